"""Strategies (pure): the functions that turn a symbol's indicators into a wish to trade, and the
gate that decides when, and on which enrichment, they decide."""
