"""The analysis of final candles (pure): streaming indicators, anomaly rules, and the fold of one
(symbol, interval) series that joins them into snapshots and anomalies."""
