"""The ledger's row keeps what waits for the strategies' progress (tables/trading.py): a
restarted ledger, or the next input, reads back the same orders and commands as the codec
decoded them, so a held order decides to the same figures as one decided on arrival."""

from __future__ import annotations

import json
from decimal import Decimal

from domain.account import Account
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from tables.trading import account_row, load_account
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
