"""The topic catalog, and that our top-level package names are ours alone."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

from schemas.records import READ_ONLY_TYPES, RECORD_TYPES, Candle, Trade
from streams.errors import UnknownTopic, WrongRecordType
from streams.kafka.catalog import CATALOG, topic
from tests.factories import make_candle, make_trade
from tests.harness import REPO

OUR_PACKAGES = ("streams", "schemas", "domain", "tables", "agents")


def test_no_other_distribution_provides_our_package_names() -> None:
    providers = importlib.metadata.packages_distributions()
    for name in OUR_PACKAGES:
        others = set(providers.get(name, [])) - {"ticktide"}
        assert not others, f"{name!r} is also provided by {others}: give ticktide its own venv"
        module = importlib.import_module(name)
        assert Path(module.__path__[0]).resolve().is_relative_to(REPO), module.__path__


def test_topic_names_follow_category_dot_name() -> None:
    categories = {"market", "analysis", "trading", "system", "user"}
    for spec in CATALOG:
        category, _, name = spec.name.partition(".")
        assert category in categories and name
    assert len({spec.name for spec in CATALOG}) == len(CATALOG)


def test_every_event_type_has_a_topic() -> None:
    carried = {t for spec in CATALOG for t in spec.value_types}
    assert carried == set(RECORD_TYPES.values()) - set(READ_ONLY_TYPES)
    assert not carried & set(READ_ONLY_TYPES)  # decoded from older records, never produced


def test_wrong_record_type_is_rejected_before_sending() -> None:
    trades = topic("market.trades")
    trades.check(make_trade())
    with pytest.raises(WrongRecordType, match=r"market\.trades carries Trade, not Candle"):
        trades.check(make_candle())
    assert topic("market.candles").value_types == (Candle,)


def test_keys_keep_one_symbol_in_one_partition() -> None:
    assert topic("market.trades").key_of(make_trade(symbol="ETHUSDT")) == "ETHUSDT"
    assert topic("market.trades").value_types == (Trade,)


def test_unknown_topic_lists_the_catalog() -> None:
    with pytest.raises(UnknownTopic, match=r"market\.trades"):
        topic("market.trade")
