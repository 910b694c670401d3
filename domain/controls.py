"""User commands applied to an account (pure): pause/resume a strategy, set a risk limit,
kill switch on/off (cancelling open orders), flatten a symbol. Each is acknowledged by
CommandAcknowledged, refusals too, with the reason."""

from __future__ import annotations

from domain.clock import to_micros
from domain.command_rules import check_user_command
from domain.ledger import Portfolio
from domain.orders import Emitter, Mark, TradingConfig, derived_id
from schemas.records import CommandAcknowledged, Event, OrderPlaced, OrderType, Side, UserCommand


def command(state: Portfolio, cmd: UserCommand, config: TradingConfig,
            marks: dict[str, list[Mark]]) -> list[Event]:
    """Apply a user command to the account and acknowledge it (refusals too)."""
    if cmd.envelope.event_id in state.acknowledged:
        return []
    out = Emitter(state, config, cmd)
    problem = check_user_command(cmd.command, cmd.arguments, cmd.user, cmd.target)
    time_us = to_micros(cmd.envelope.event_time)
    detail = str(problem) if problem else f"{cmd.command} applied"
    if problem is None and cmd.command == "flatten":
        detail = _flatten(out, cmd.arguments["symbol"], marks.get(cmd.arguments["symbol"], []))
    out.emit(CommandAcknowledged(
        envelope=out.envelope(CommandAcknowledged, derived_id(cmd.envelope.event_id, "ack"), time_us),
        account=state.account, command_id=cmd.envelope.event_id, command=cmd.command,
        arguments=_shown(cmd.arguments) if problem else dict(cmd.arguments),
        accepted=problem is None, detail=detail))
    if problem is None and cmd.command == "kill_switch" and cmd.arguments["state"] == "on":
        for order in state.open_orders():
            out.reject(order.order_id, order.symbol, "kill_switch", "cancelled: the kill switch is on",
                       order.last_fill_us)
    return out.events


def _shown(arguments: dict[str, str]) -> dict[str, str]:
    """A refused command's arguments as acknowledged: at most 16, each name and value cut to
    64 characters (a hostile record must not make a huge acknowledgement)."""
    return {name[:64]: value[:64] for name, value in list(arguments.items())[:16]}


def _flatten(out: Emitter, symbol: str, marks: list[Mark]) -> str:
    """Close the symbol's position: its open orders are cancelled, then one market order
    for the whole position is placed. Idempotent: if the open orders already are exactly
    one market order for the whole position (a previous flatten), nothing is placed, so a
    repeated flatten never overshoots into the opposite position."""
    state = out.state
    quantity = state.position(symbol).quantity
    pending = state.open_orders(symbol)
    if (len(pending) == 1 and pending[0].order_type == OrderType.MARKET
            and pending[0].signed_remaining == -quantity and quantity):
        return f"{symbol} is already being flattened by order {pending[0].order_id}"
    # Placed at the latest market time seen, so the next mark of the symbol fills it.
    time_us = marks[-1].time_us if marks else max(
        (o.last_fill_us for o in state.orders.values() if o.symbol == symbol), default=0)
    for order in pending:
        out.reject(order.order_id, order.symbol, "flatten", "cancelled: the position is being flattened",
                   max(time_us, order.last_fill_us))
    if not quantity:
        cancelled = f" ({len(pending)} open orders cancelled)" if pending else ""
        return f"{symbol} is already flat{cancelled}"
    order_id = derived_id(out.cause.envelope.event_id, "flatten", symbol)
    out.emit(OrderPlaced(
        envelope=out.envelope(OrderPlaced, derived_id(order_id, "placed"), time_us),
        order_id=order_id, account=state.account, symbol=symbol,
        side=Side.SELL if quantity > 0 else Side.BUY, order_type=OrderType.MARKET, quantity=abs(quantity)))
    return f"flatten order {order_id} for {abs(quantity)} {symbol} placed"
