"""JSON rows of the ledger state (what the portfolio table stores) and the summary users
see. Amounts are exact decimal strings in rows, trimmed ones in the summary."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from domain.amounts import EXACT, ZERO, quantize
from domain.trading.portfolio import Controls, Order, OrderStatus, Portfolio, Position, legacy_status


def _num(value: Decimal) -> str:
    return str(value)


def _show(value: Decimal) -> str:
    """A decimal for people: no exponent, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_row(state: Portfolio) -> dict[str, Any]:
    """The state as JSON (amounts as exact decimal strings)."""
    return {
        "account": state.account,
        "initial_cash": _num(state.initial_cash),
        "cash": _num(state.cash),
        "positions": {s: {"quantity": _num(p.quantity), "cost": _num(p.cost),
                          "realised": _num(p.realised), "fees": _num(p.fees),
                          "last_price": _num(p.last_price)}
                      for s, p in sorted(state.positions.items())},
        "orders": {k: _order_row(o) for k, o in state.orders.items()},
        "controls": {"paused": state.controls.paused, "limits": state.controls.limits,
                     "killed": state.controls.killed},
        "order_times": state.order_times,
        "acknowledged": state.acknowledged,
        "events": state.events,
    }


def _order_row(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id, "symbol": order.symbol, "side": order.side,
        "quantity": _num(order.quantity), "order_type": order.order_type,
        "limit_price": None if order.limit_price is None else _num(order.limit_price),
        "placed_us": order.placed_us,
        "strategy": order.strategy, "filled": _num(order.filled), "status": str(order.status),
        "reason_code": order.reason_code, "reason": order.reason,
        "last_fill_us": order.last_fill_us, "fill_ids": order.fill_ids, "event_ids": order.event_ids,
        "closed_us": order.closed_us, "correlation_id": order.correlation_id,
    }


def from_row(row: dict[str, Any]) -> Portfolio:
    """The state of a JSON row."""
    controls = row["controls"]
    return Portfolio(
        account=row["account"], initial_cash=Decimal(row["initial_cash"]), cash=Decimal(row["cash"]),
        positions={s: Position(**{k: Decimal(v) for k, v in p.items()}) for s, p in row["positions"].items()},
        orders={k: _order(o) for k, o in row["orders"].items()},
        controls=Controls(paused=list(controls["paused"]), limits=dict(controls["limits"]),
                          killed=bool(controls["killed"])),
        order_times=list(row["order_times"]), acknowledged=list(row["acknowledged"]),
        events=int(row["events"]),
    )


def _order(row: dict[str, Any]) -> Order:
    values = dict(row)
    values.pop("placed_wall_us", None)  # rows written before expiry ran on event time
    values.setdefault("closed_us", 0)  # rows written before orders of a symbol filled one after another
    values["correlation_id"] = str(values.get("correlation_id") or "")
    for name in ("quantity", "filled"):
        values[name] = Decimal(values[name])
    if values["limit_price"] is not None:
        values["limit_price"] = Decimal(values["limit_price"])
    status = values["status"]
    values["status"] = legacy_status(values["reason_code"]) if status == "REJECTED" else OrderStatus(status)
    values["fill_ids"], values["event_ids"] = list(values["fill_ids"]), list(values["event_ids"])
    return Order(**values)


def summary(state: Portfolio, prices: dict[str, Decimal] | None = None) -> dict[str, Any]:
    """What a user sees: cash, equity, P&L and positions (unrealised at ``prices`` where
    given, else at each symbol's last fill price)."""
    prices = prices or {}
    with localcontext(EXACT):
        positions = {
            symbol: {"quantity": _show(p.quantity), "average_price": _show(p.average_price),
                     "realised_pnl": _show(p.realised), "unrealised_pnl": _show(p.unrealised(prices.get(symbol))),
                     "fees": _show(p.fees), "mark_price": _show(prices.get(symbol, p.last_price))}
            for symbol, p in sorted(state.positions.items())
        }
        realised = sum((p.realised for p in state.positions.values()), ZERO)
        unrealised = sum((p.unrealised(prices.get(s)) for s, p in state.positions.items()), ZERO)
        fees = sum((p.fees for p in state.positions.values()), ZERO)
        equity = state.cash + sum((p.quantity * prices.get(s, p.last_price)
                                   for s, p in state.positions.items()), ZERO)
    return {
        "account": state.account, "cash": _show(state.cash), "equity": _show(quantize(equity)),
        "realised_pnl": _show(realised), "unrealised_pnl": _show(unrealised), "fees": _show(fees),
        "positions": positions, "open_orders": len(state.open_orders()),
        "controls": {"paused": state.controls.paused, "limits": state.controls.limits,
                     "kill_switch": state.controls.killed},
        "events": state.events,
    }
