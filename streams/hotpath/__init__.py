"""The hot path: re-batching market.trades and the Trade decoder that feeds the candle fold."""
