"""User commands applied to an account (pure): PauseStrategy, ResumeStrategy, SetRiskLimit,
EngageKillSwitch (canceling open orders), ReleaseKillSwitch, FlattenPosition. Each is
acknowledged by CommandAcknowledged, a refusal too, with the reason. A command's fields
are valid by the time it gets here (domain/rules/validity.py, checked where it is decoded)."""

from __future__ import annotations

from domain.clock import to_micros
from domain.rules.commands import command_arguments
from domain.trading.orders import Emitter, TradingConfig, derived_id, mark_time
from domain.trading.portfolio import Portfolio
from schemas.records import (
    Command,
    CommandAcknowledged,
    EngageKillSwitch,
    Event,
    FlattenPosition,
    Mark,
    OrderPlaced,
    OrderType,
    Side,
)


def command(state: Portfolio, cmd: Command, config: TradingConfig, marks: dict[str, list[Mark]]) -> list[Event]:
    """Apply a user command to the account and acknowledge it (refusals too)."""
    if cmd.envelope.event_id in state.acknowledged:
        return []
    out = Emitter(state, config, cmd)
    time_us = to_micros(cmd.envelope.event_time)
    name = type(cmd).__name__
    refused = cmd.account is not None and cmd.account != state.account
    detail = f"{name} is for account {cmd.account}, not {state.account}" if refused else f"{name} applied"
    if not refused and isinstance(cmd, FlattenPosition):
        detail = _flatten(out, cmd.symbol, marks.get(cmd.symbol, []))
    out.emit(CommandAcknowledged(
        envelope=out.envelope(CommandAcknowledged, derived_id(cmd.envelope.event_id, "ack"), time_us),
        account=state.account, command_id=cmd.envelope.event_id, command=name,
        arguments=command_arguments(cmd), accepted=not refused, detail=detail))
    if not refused and isinstance(cmd, EngageKillSwitch):
        for order in state.open_orders():
            out.cancel(order, "kill_switch", "canceled: the kill switch is on", max(time_us, order.last_fill_us))
    return out.events


def _flatten(out: Emitter, symbol: str, marks: list[Mark]) -> str:
    """Close the symbol's position: its open orders are canceled, then one market order
    for the whole position is placed. Idempotent: if the open orders already are exactly
    one market order for the whole position (a previous flatten), nothing is placed, so a
    repeated flatten never overshoots into the opposite position."""
    state = out.state
    quantity = state.position(symbol).quantity
    pending = state.open_orders(symbol)
    if (len(pending) == 1 and pending[0].order_type == OrderType.MARKET
            and pending[0].signed_remaining == -quantity and quantity):
        return f"{symbol} is already being flattened by order {pending[0].order_id}"
    # Placed at the command's time, or at the symbol's latest mark if that is later, so the
    # next mark fills it; its timeout runs from the command, however long the symbol was
    # quiet before (placed at a mark 20 s old, it lived 10 s of its 30).
    time_us = max([to_micros(out.cause.envelope.event_time), *(mark_time(m) for m in marks[-1:])])
    for order in pending:
        out.cancel(order, "flatten", "canceled: the position is being flattened", max(time_us, order.last_fill_us))
    if not quantity:
        canceled = f" ({len(pending)} open orders canceled)" if pending else ""
        return f"{symbol} is already flat{canceled}"
    order_id = derived_id(out.cause.envelope.event_id, "flatten", symbol)
    out.emit(OrderPlaced(
        envelope=out.envelope(OrderPlaced, derived_id(order_id, "placed"), time_us),
        order_id=order_id, account=state.account, symbol=symbol,
        side=Side.SELL if quantity > 0 else Side.BUY, order_type=OrderType.MARKET, quantity=abs(quantity)))
    return f"flatten order {order_id} for {abs(quantity)} {symbol} placed"
