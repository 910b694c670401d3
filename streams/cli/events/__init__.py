"""Commands that put events on topics or read them: produce (trades, news), consume, command."""
