"""A component that dies (a bug, not a bad record) is reported, not hidden: /ready turns
503 naming it, system.status carries FAILED for it, and the rest of the worker goes on."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.records import ComponentStatus, Lifecycle
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.factories import make_news, make_trade
from tests.harness import http_json, run_cli, start_worker
from tests.plugins.faulty_agent import AGENT, TRIGGER

pytestmark = pytest.mark.integration


def test_a_crashed_agent_turns_ready_to_503_and_is_reported_failed(stack_settings: Settings,
                                                                    tmp_path: Path) -> None:
    worker = start_worker(stack_settings, tmp_path / "worker.log",
                          TICKTIDE_EXTRA_AGENTS="tests.plugins.faulty_agent", TICKTIDE_HEARTBEAT_PERIOD_S="1")
    try:
        worker.wait_until(lambda h: h["ready"], 60, "the worker to be ready")
        now = datetime.now(UTC)
        with EventProducer(stack_settings) as producer:
            producer.send("market.news", make_news(headline="calm markets", published_time=now))
            producer.send("market.news", make_news(headline=f"please {TRIGGER}", published_time=now))

        deadline, ready = time.monotonic() + 60, (200, {})
        while time.monotonic() < deadline:
            ready = http_json(f"{worker.url}/ready")
            if ready[0] == 503:
                break
            time.sleep(0.3)
        status, body = ready
        assert status == 503, body
        assert AGENT in body["reason"] and "RuntimeError" in body["reason"], body
        assert http_json(f"{worker.url}/live")[0] == 200  # reported, not restarted in a loop
        assert AGENT in worker.health()["failed_components"]

        failed: list[ComponentStatus] = []
        deadline = time.monotonic() + 30
        while not failed and time.monotonic() < deadline:
            failed = [r.event for r in read_topic(stack_settings, "system.status", idle_timeout=2, until_end=True)
                      if isinstance(r, Consumed) and isinstance(r.event, ComponentStatus)
                      and r.event.component == AGENT and r.event.lifecycle is Lifecycle.FAILED]
        assert failed and "RuntimeError" in failed[0].detail

        # Everything else goes on: trades are still folded.
        before = worker.processed("market.trades")
        with EventProducer(stack_settings) as producer:
            for i in range(5):
                producer.send("market.trades", make_trade(trade_id=900 + i))
        worker.wait_until(lambda h: h["agents"].get("market.trades", {}).get("processed", 0) >= before + 5,
                          60, "trades folded after the crash")
        assert worker.process.poll() is None
    finally:
        worker.stop()


def test_an_extra_agent_module_that_does_not_import_is_a_setting_error() -> None:
    result = run_cli("worker", "--broker", "127.0.0.1:1", TICKTIDE_BROKER_FLAVOR="tansu",
                     TICKTIDE_EXTRA_AGENTS="tests.plugins.no_such_agent", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("cannot import tests.plugins.no_such_agent: "
                                                            "No module named 'tests.plugins.no_such_agent'")
    assert "extra_agents" in result.stderr and "Traceback" not in result.stderr
