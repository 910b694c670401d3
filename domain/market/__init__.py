"""The market's pure logic: trades as ticks and bars, event-time windows, the candle fold and its
rows, and the marks the paper ledger fills against."""
