"""Amounts as the contract holds them: exact ``Decimal``s of at most 18 places (decimal(38, 18))."""

from __future__ import annotations

from decimal import Context, Decimal

ZERO = Decimal(0)
SCALE = Decimal("1e-18")
EXACT = Context(prec=80)
"""Wide enough for any product or sum of contract amounts: no rounding."""


def quantize(value: Decimal) -> Decimal:
    """Round to the contract's 18 decimal places (half-even)."""
    return value.quantize(SCALE, context=EXACT)
