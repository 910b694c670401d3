"""Commands over what topics already hold: replay a range, rebuild state and compare it,
explain an order's causes, inspect and re-send dead letters."""
