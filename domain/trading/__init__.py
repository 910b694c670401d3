"""Paper trading (pure): the account's fold over trading.commands, order decisions, risk checks,
user commands on an account, the ledger over trading.events and its rows."""
