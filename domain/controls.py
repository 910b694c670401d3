"""User commands applied to an account (pure): pause/resume a strategy, set a risk limit,
kill switch on/off (cancelling open orders), flatten a symbol. Each is acknowledged by
CommandAcknowledged, refusals too, with the reason."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from domain.clock import to_micros
from domain.ledger import MAX_ORDER_TIMES, Portfolio
from domain.orders import Emitter, Mark, TradingConfig, derived_id
from schemas.records import CommandAcknowledged, Event, OrderPlaced, OrderType, Side, UserCommand

LIMIT_NAMES = ("max_position", "max_gross_exposure", "max_orders_per_minute")
COMMANDS = ("pause_strategy", "resume_strategy", "set_risk_limit", "kill_switch", "flatten")


def _check_command(command: UserCommand) -> str | None:
    args = command.arguments
    if command.command not in COMMANDS:
        return f"unknown command {command.command!r}; known: {', '.join(COMMANDS)}"
    if command.command in ("pause_strategy", "resume_strategy") and not args.get("strategy"):
        return "needs argument strategy=NAME"
    if command.command == "kill_switch" and args.get("state") not in ("on", "off"):
        return "needs argument state=on|off"
    if command.command == "flatten" and not args.get("symbol"):
        return "needs argument symbol=SYMBOL"
    if command.command == "set_risk_limit":
        name, value = args.get("limit"), args.get("value", "")
        if name not in LIMIT_NAMES:
            return f"needs argument limit=one of {', '.join(LIMIT_NAMES)}"
        try:
            number = Decimal(value)
        except InvalidOperation:
            return f"value must be a number, got {value!r}"
        if not number.is_finite() or number < 0:
            return "value must be a non-negative number"
        if name == "max_orders_per_minute" and (number != int(number) or number > MAX_ORDER_TIMES):
            return f"value must be an integer from 0 to {MAX_ORDER_TIMES}"
    return None


def command(state: Portfolio, cmd: UserCommand, config: TradingConfig,
            marks: dict[str, list[Mark]]) -> list[Event]:
    """Apply a user command to the account and acknowledge it (refusals too)."""
    if cmd.envelope.event_id in state.acknowledged:
        return []
    out = Emitter(state, config, cmd)
    problem = _check_command(cmd)
    time_us = to_micros(cmd.envelope.event_time)
    detail = problem or f"{cmd.command} applied"
    if problem is None and cmd.command == "flatten":
        detail = _flatten(out, cmd.arguments["symbol"], marks.get(cmd.arguments["symbol"], []))
    out.emit(CommandAcknowledged(
        envelope=out.envelope(CommandAcknowledged, derived_id(cmd.envelope.event_id, "ack"), time_us),
        account=state.account, command_id=cmd.envelope.event_id, command=cmd.command,
        arguments=dict(cmd.arguments), accepted=problem is None, detail=detail))
    if problem is None and cmd.command == "kill_switch" and cmd.arguments["state"] == "on":
        for order in state.open_orders():
            out.reject(order.order_id, order.symbol, "kill_switch", "cancelled: the kill switch is on",
                       order.last_fill_us)
    return out.events


def _flatten(out: Emitter, symbol: str, marks: list[Mark]) -> str:
    quantity = out.state.position(symbol).quantity
    if not quantity:
        return f"{symbol} is already flat"
    # Placed at the latest market time seen, so the next mark of the symbol fills it.
    time_us = marks[-1].time_us if marks else max(
        (o.last_fill_us for o in out.state.orders.values() if o.symbol == symbol), default=0)
    order_id = derived_id(out.cause.envelope.event_id, "flatten", symbol)
    out.emit(OrderPlaced(
        envelope=out.envelope(OrderPlaced, derived_id(order_id, "placed"), time_us),
        order_id=order_id, account=out.state.account, symbol=symbol,
        side=Side.SELL if quantity > 0 else Side.BUY, order_type=OrderType.MARKET, quantity=abs(quantity)))
    return f"flatten order {order_id} for {abs(quantity)} {symbol} placed"
