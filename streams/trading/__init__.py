"""Paper trading's orchestration around the pure folds (domain/trading/): the ledger's driver."""
