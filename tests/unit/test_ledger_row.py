"""The ledger's row keeps what waits for the strategies' progress (tables/trading.py): a
restarted ledger, or the next input, reads back the same orders and commands as the codec
decoded them, so a held order decides to the same figures as one decided on arrival."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal
from typing import Any

from domain.market.marks import MarkSlice, mark_record
from domain.trading.account import Account
from schemas.records import Mark
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from tables.trading import ROW_MARKS, ROW_SLICE, account_row, account_row_in_slices, load_account
from tests.factories import (
    make_engage_kill_switch,
    make_flatten_position,
    make_pause_strategy,
    make_place_order,
    make_set_risk_limit,
)


def test_held_inputs_come_back_from_the_row_exactly_as_decoded_from_the_topic() -> None:
    codec = AvroCodec(EmbeddedRegistry())
    held = [make_place_order(quantity=Decimal("0.01"), limit_price=Decimal("64000.5")), make_set_risk_limit(),
            make_engage_kill_switch(), make_flatten_position(), make_pause_strategy()]
    decoded = [codec.decode(codec.encode(item)) for item in held]
    state = Account.open("paper-main", Decimal(1000))
    state.held, state.progress, state.through_us = decoded, {"BTCUSDT": 7, "ETHUSDT": 9}, 7
    row = json.loads(json.dumps(account_row(state)))  # what the changelog keeps
    back = load_account({"paper-main": row}, "paper-main", Decimal(1))
    assert back.held == decoded
    assert str(back.held[0].quantity) == "0.010000000000000000"  # not "0.01": the fills' figures match
    assert (back.progress, back.through_us) == ({"BTCUSDT": 7, "ETHUSDT": 9}, 7)


def test_a_row_written_before_progress_existed_reads_as_an_account_no_strategy_reports_to() -> None:
    state = Account.open("paper-main", Decimal(1000))
    row = json.loads(json.dumps(account_row(state)))
    for key in ("progress", "through_us", "held"):
        del row[key]
    back = load_account({"paper-main": row}, "paper-main", Decimal(1))
    assert back.until_us is None and back.held == [] and not back.waiting()


def _decided_on(mark: Mark) -> tuple[Any, ...]:
    """What a decision reads of a kept mark (amounts as text: their places count too)."""
    return (mark.envelope.event_id, mark.envelope.event_time, str(mark.price), str(mark.size), mark.last_trade_id)


def test_kept_marks_come_back_from_the_row_as_decided_on_and_the_row_holds_no_id_it_can_derive() -> None:
    codec = AvroCodec(EmbeddedRegistry())
    made = [mark_record(MarkSlice("BTCUSDT", 10**15 + n * 10**6, 10**15 + n * 10**6 + 999_000, 700 + n,
                                  64_000 * 10**18 + n * 10**17, (n + 1) * 10**15, 3)) for n in range(5)]
    foreign = dataclasses.replace(made[0], envelope=dataclasses.replace(
        made[0].envelope, event_id="someone-elses-id", event_time=made[4].envelope.event_time))
    forged = dataclasses.replace(made[1], size=Decimal(2), envelope=dataclasses.replace(
        made[1].envelope, event_time=made[4].envelope.event_time))  # a genuine mark's id, other content
    kept = [codec.decode(codec.encode(m)) for m in [*made, foreign, forged]]  # as read from the topic
    state = Account.open("paper-main", Decimal(1000))
    state.marks = {"BTCUSDT": kept}
    row = json.loads(json.dumps(account_row(state)))
    assert row["marks"]["BTCUSDT"]["id"] == {"5": "someone-elses-id", "6": made[1].envelope.event_id}
    assert row["marks"]["BTCUSDT"]["p"][1] == "64000.1"  # no trailing zeros in the row
    back = load_account({"paper-main": row}, "paper-main", Decimal(1)).marks["BTCUSDT"]
    assert [_decided_on(m) for m in back] == [_decided_on(m) for m in kept]
    assert str(back[1].price) == "64000.100000000000000000"  # the contract's places, as decoded


def test_the_row_keeps_at_most_row_marks_and_counts_the_rest_as_dropped() -> None:
    """An account with thousands of symbols: the row stays a record Kafka takes; each symbol
    keeps its newest marks (its price at least), and the older ones count as dropped, so a
    restarted ledger denies an order it can no longer price rather than pricing it wrongly."""
    state = Account.open("paper-main", Decimal(1000))
    symbols = [f"SYM{n}USDT" for n in range(ROW_MARKS // 4)]
    state.marks = {symbol: [mark_record(MarkSlice(symbol, 10**15 + t * 10**6, 10**15 + t * 10**6 + 5, t + 1,
                                                  10**18, 10**18, 1)) for t in range(6)] for symbol in symbols}
    row = json.loads(json.dumps(account_row(state)))
    back = load_account({"paper-main": row}, "paper-main", Decimal(1))
    assert sum(len(recent) for recent in back.marks.values()) <= ROW_MARKS
    assert [m.last_trade_id for m in back.marks["SYM7USDT"]] == [3, 4, 5, 6]  # the newest four
    assert back.forgotten_us["SYM7USDT"] == 10**15 + 10**6 + 5  # the newest dropped
    assert state.marks["SYM7USDT"][0].last_trade_id == 1  # the ledger's memory keeps them all
    small = Account.open("paper-main", Decimal(1000))
    small.marks = {"BTCUSDT": state.marks["SYM7USDT"]}
    assert len(load_account({"paper-main": json.loads(json.dumps(account_row(small)))}, "paper-main",
                            Decimal(1)).marks["BTCUSDT"]) == 6  # under the bound: every mark


def test_a_row_of_thousands_of_symbols_is_made_in_slices_the_loop_runs_between() -> None:
    """With thousands of symbols the row is made a slice of symbols at a time: another task
    (the trade reader) gets turns meanwhile, and the row is the one made in one go."""
    state = Account.open("paper-main", Decimal(1000))
    symbols = [f"SYM{n}USDT" for n in range(3 * ROW_SLICE + 7)]
    state.marks = {symbol: [mark_record(MarkSlice(symbol, 10**15 + t * 10**6, 10**15 + t * 10**6 + 5, t + 1,
                                                  10**18 + t, 10**18, 1)) for t in range(2)] for symbol in symbols}
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def make() -> tuple[dict[str, Any], float]:
        other = asyncio.create_task(other_task())
        await asyncio.sleep(0)
        turns_before = turns
        try:
            made = await account_row_in_slices(state)
        finally:
            other.cancel()
        assert turns - turns_before >= 3  # a turn after each slice of ROW_SLICE symbols
        return made

    row, spent_s = asyncio.run(make())
    assert row == account_row(state) and spent_s > 0
