"""Rebuild state from its source topic with the live fold, and compare it with the live
state read from the broker (no worker needed).

* portfolio: trading.events -> the ledger's fold (domain.trading.ledger.evolve, through
  domain.fold.step) per account, vs the latest value of each account in the portfolio
  table's changelog topic (its "portfolio" part). Older topics' OrderRejected events fold
  as the denial, expiry or cancel each was.
* candles: market.trades -> domain.market.candles.apply_trade per symbol, vs market.candles: every
  candle the rebuild closed must be there, identical; a live candle the rebuild still has
  open must equal that open window (the live worker closes quiet symbols on a timer).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.fold import step
from domain.market.candles import CandleFold, ClosedCandle, SymbolCandles, candle_record
from domain.trading import ledger, ledger_rows
from domain.trading.portfolio import Portfolio
from schemas.records import Candle, Event, utc_now
from streams.errors import BrokerError, DecodeError, InvalidValue
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.admin import partition_count
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import event_to_json
from streams.kafka.ranges import Raw, read_all
from streams.kafka.registry import registry_for
from streams.settings import Settings
from streams.validation import bounds_now
from tables import names


@dataclass
class Comparison:
    """The outcome of a rebuild: per key equal or a description of the difference."""

    what: str
    keys: dict[str, str] = field(default_factory=dict)  # key -> "equal" | difference
    events: int = 0
    seconds: float = 0.0
    checksum: str = ""
    undecodable: int = 0

    @property
    def equal(self) -> bool:
        """True when every key matched."""
        return all(v == "equal" for v in self.keys.values())

    @property
    def rate(self) -> float:
        """Source events folded per second (read + decode + fold)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def checksum(rows: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of rows (first 16 hex digits)."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _codec(settings: Settings) -> AvroCodec:
    return AvroCodec(registry_for(settings), settings.max_record_bytes)


def _decoded(settings: Settings, topic: str, result: Comparison) -> Iterator[tuple[Raw, Event]]:
    codec = _codec(settings)
    for raw in read_all(settings, topic):
        try:
            event = codec.decode(raw.value)
        except DecodeError:
            result.undecodable += 1
            continue
        result.events += 1
        yield raw, event


def changelog_rows(settings: Settings, table: str) -> dict[str, Any]:
    """The latest value of every key of a table, from its changelog topic."""
    topic = names.changelog_topic(settings.app_id, table)
    rows: dict[str, Any] = {}
    try:
        records = list(read_all(settings, topic))
    except BrokerError as exc:
        raise BrokerError(f"cannot read the live {table} table ({exc}); is app {settings.app_id!r} running?") \
            from None
    for raw in records:
        key = raw.key.decode(errors="replace") if raw.key is not None else ""
        key = json.loads(key) if key.startswith('"') else key
        if raw.value is None:
            rows.pop(key, None)
        else:
            rows[key] = json.loads(raw.value)
    return rows


def _difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for name in sorted(set(expected) | set(actual)):
            if expected.get(name) != actual.get(name):
                return _difference(expected.get(name), actual.get(name), f"{path}.{name}")
    return f"{path.lstrip('.') or 'value'}: rebuilt {json.dumps(expected, default=str)[:200]} " \
           f"!= live {json.dumps(actual, default=str)[:200]}"


def rebuild_portfolio(settings: Settings, looks: int = 3, pause_s: float = 1.0) -> Comparison:
    """Fold trading.events into fresh portfolios and compare with the live table.

    A working ledger moves both while they are read. The live rows are read first: the
    ledger writes a row only once the broker has its events, so every event a row holds is
    on trading.events by the time the topic is read. The topic may hold newer events than
    the rows, though, so a difference is looked at again (``looks`` times, ``pause_s``
    apart) and reported only if it stays."""
    compared = _look_at_portfolios(settings)
    for _ in range(looks - 1):
        if compared.equal:
            break
        time.sleep(pause_s)
        compared = _look_at_portfolios(settings)
    return compared


def _look_at_portfolios(settings: Settings) -> Comparison:
    live = {k: _as_today(v["portfolio"]) for k, v in changelog_rows(settings, names.PORTFOLIO).items()}
    result, rebuilt = fold_portfolios(settings)
    for account in live.keys() - rebuilt.keys():
        # The ledger writes an account's row on its first input (a market mark), before it
        # has any trading event: with no events, the rebuild's state is the opening one.
        rebuilt[account] = ledger_rows.to_row(Portfolio.open(account, settings.initial_cash))
    return _compare(result, rebuilt, live)


def _as_today(row: Any) -> Any:
    """A live row as this version writes it (a row written before OrderRejected was split
    says REJECTED where it means denied, expired or canceled); a row it cannot read is
    compared as it is."""
    try:
        return ledger_rows.to_row(ledger_rows.from_row(row))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return row


def fold_portfolios(settings: Settings) -> tuple[Comparison, dict[str, Any]]:
    """Fold trading.events into fresh portfolios: (timing and checksum, rows by account)."""
    result = Comparison("portfolio")
    started = time.perf_counter()
    states: dict[str, ledger.Projection] = {}
    topic = settings.topic_prefix + "trading.events"
    for raw, event in _decoded(settings, topic, result):
        account = raw.key.decode(errors="replace") if raw.key else ""
        state = states.get(account)
        if state is None:
            state = states[account] = ledger.Projection(Portfolio.open(account, settings.initial_cash))
        step(ledger.evolve, state, event, raw.partition, raw.offset)
    rebuilt = {account: ledger_rows.to_row(state.portfolio) for account, state in states.items()}
    result.seconds = time.perf_counter() - started
    result.checksum = checksum(rebuilt)
    return result, rebuilt


def _compare(result: Comparison, rebuilt: dict[str, Any], live: dict[str, Any],
             same: Callable[[Any, Any], str | None] | None = None) -> Comparison:
    for key in sorted(set(rebuilt) | set(live)):
        if key not in live:
            result.keys[key] = "different: missing from the live table"
        elif key not in rebuilt:
            result.keys[key] = "different: in the live table but not in the rebuild"
        else:
            problem = same(rebuilt[key], live[key]) if same else (
                None if rebuilt[key] == live[key] else _difference(rebuilt[key], live[key]))
            result.keys[key] = "equal" if problem is None else f"different: {problem}"
    return result


_UNKNOWN_BEFORE_V2 = ("taker_buy_quote_volume", "close_time")
"""Candle v2 fields that a v1 candle (or a window folded partly before v2) leaves null."""


def _payload(candle: Candle, said_only: bool = False) -> dict[str, Any]:
    """A candle's fields without the envelope; ``said_only`` leaves out the v2 fields it
    does not know (null), so a v1 candle is compared on what it says."""
    shown = event_to_json(candle)
    shown.pop("envelope")
    if said_only:
        for name in _UNKNOWN_BEFORE_V2:
            if shown.get(name) is None:
                shown.pop(name, None)
    return shown


def _said(rebuilt: dict[str, Any] | None, live: dict[str, Any]) -> dict[str, Any] | None:
    """The rebuilt candle's fields that the live one has."""
    return None if rebuilt is None else {name: rebuilt.get(name) for name in live}


def rebuild_candles(settings: Settings) -> Comparison:
    """Fold market.trades into fresh candles and compare with market.candles."""
    result = Comparison("candles")
    started = time.perf_counter()
    specs, now = settings.window_specs, utc_now()
    fold = CandleFold(specs, int(settings.grace_s * 1_000_000))
    states: dict[str, SymbolCandles] = {}
    closed: dict[str, dict[str, Any]] = {}
    topic = settings.topic_prefix + "market.trades"
    # The market agent's fast path and rules: what it dead-letters is not folded here either.
    decoder = TickDecoder(_codec(settings), partitions=partition_count(settings, topic))
    bounds = bounds_now(settings.max_future_skew_s)
    for raw in read_all(settings, topic):
        try:
            tick = decoder.decode_checked(raw.value, raw.timestamp_ms, raw.partition, bounds)
        except (DecodeError, InvalidValue):
            result.undecodable += 1
            continue
        result.events += 1
        state = states.get(tick.symbol)
        if state is None:
            state = states[tick.symbol] = SymbolCandles(tick.symbol)
        _, done = step(fold.evolve, state, tick, raw.partition, raw.offset)
        for candle in done:
            if not isinstance(candle, ClosedCandle):
                continue  # late (never applied)
            closed.setdefault(candle.symbol, {})[candle.candle_id] = _payload(candle_record(candle, "rebuild", now))
    result.seconds = time.perf_counter() - started
    result.checksum = checksum(closed)
    still_open = {symbol: {c.candle_id: _payload(candle_record(c, "rebuild", now))
                           for spec in specs for c in (ClosedCandle(symbol, spec.name, bar)
                                                        for bar in fold.open_bars(state, spec.name))}
                  for symbol, state in states.items()}
    live: dict[str, dict[str, Any]] = {}
    seen = Comparison("live candles")
    for _, record in _decoded(settings, settings.topic_prefix + "market.candles", seen):
        if isinstance(record, Candle):
            live.setdefault(record.symbol, {})[record.envelope.event_id] = _payload(record, said_only=True)

    def same(expected: dict[str, Any], actual: dict[str, Any], symbol: str) -> str | None:
        missing = [k for k in expected if k not in actual]
        if missing:
            return f"{len(missing)} candles missing from market.candles, e.g. {expected[missing[0]]}"
        opened = still_open.get(symbol, {})
        wrong = [k for k, v in actual.items() if _said(expected.get(k, opened.get(k)), v) != v]
        return f"{len(wrong)} candles differ, e.g. {actual[wrong[0]]}" if wrong else None

    for symbol in sorted(set(closed) | set(live)):
        problem = same(closed.get(symbol, {}), live.get(symbol, {}), symbol)
        result.keys[symbol] = "equal" if problem is None else f"different: {problem}"
    return result
