"""TICKTIDE_PROCESSING_GUARANTEE: at-least-once, handed to Faust; exactly_once refused at start
with one line, whichever way the worker is started: on the embedded broker because Tansu has no
transactions, on Apache Kafka because Faust's exactly_once did not hold up there (README,
"Delivery on Kafka, measured")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from faust.types.enums import ProcessingGuarantee

from streams.cli import main
from streams.devstack.stack import DevStack
from streams.errors import ConfigError
from streams.settings import load_settings
from streams.worker import build_worker

ON_KAFKA = ("invalid setting processing_guarantee (TICKTIDE_PROCESSING_GUARANTEE): exactly_once is not offered: "
            "on Apache Kafka Faust sent trading.events and trading.signals outside any transaction and aborted every "
            "heartbeat (README: Delivery on Kafka, measured); use at_least_once (ticktide's tables skip re-delivered "
            "records)")
REFUSAL = ("invalid setting processing_guarantee (TICKTIDE_PROCESSING_GUARANTEE): exactly_once needs broker "
           "transactions, which the embedded broker (Tansu) does not have: use at_least_once (ticktide's tables "
           "skip re-delivered records)")


@pytest.mark.parametrize("given", [{}, {"processing_guarantee": "at_least_once"}])
def test_at_least_once_is_the_default_and_reaches_faust(tmp_path: Path, given: dict[str, str]) -> None:
    app = build_worker(load_settings(data_dir=tmp_path, broker_flavor="kafka", **given))
    assert app.conf.processing_guarantee == ProcessingGuarantee.AT_LEAST_ONCE


def test_exactly_once_on_apache_kafka_is_refused_with_the_measured_reason(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, broker_flavor="kafka", processing_guarantee="exactly_once")
    with pytest.raises(ConfigError) as refused:
        build_worker(settings)
    assert str(refused.value) == ON_KAFKA


@pytest.mark.parametrize("how", ["flavor", "embedded"])
def test_exactly_once_on_the_embedded_broker_is_refused_before_anything_starts(tmp_path: Path, how: str) -> None:
    flavor = "tansu" if how == "flavor" else "kafka"
    settings = load_settings(data_dir=tmp_path, broker_flavor=flavor, processing_guarantee="exactly_once")
    with pytest.raises(ConfigError) as refused:
        build_worker(settings, embedded=how == "embedded")
    assert str(refused.value) == REFUSAL
    with pytest.raises(ConfigError, match="TICKTIDE_PROCESSING_GUARANTEE"):
        DevStack(settings).start()  # `ticktide dev` runs the embedded broker: refused before it starts it


def test_ticktide_worker_on_the_embedded_broker_says_so_in_one_line_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKTIDE_BROKER_FLAVOR", "tansu")
    monkeypatch.setenv("TICKTIDE_PROCESSING_GUARANTEE", "exactly_once")
    monkeypatch.setattr(sys, "argv", ["ticktide", "worker", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"ticktide: {REFUSAL}"]


@pytest.mark.parametrize("value", ["exactly-once", "EXACTLY_ONCE", "at_most_once", ""])
def test_an_unknown_guarantee_is_a_setting_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^invalid setting processing_guarantee \(TICKTIDE_PROCESSING_GUARANTEE\)"):
        load_settings(processing_guarantee=value)
