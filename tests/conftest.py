"""Fixtures for every test; the helpers behind them live in tests/harness.py."""

import os

import pytest

from tests.harness import (
    ENGINE_VARIABLE,
    broker,
    chosen_engine,
    fake,
    isolated_broker,
    shared_worker,
    stack_settings,
    worker,
)

__all__ = ["broker", "fake", "isolated_broker", "shared_worker", "stack_settings", "worker"]

LONGEST_FIRST = (
    "test_backtest_parity.py", "test_broker_failures.py", "test_compaction.py", "test_scaling.py",
    "test_exactness.py", "test_market_time_replay.py", "test_trading.py", "test_web_hostile.py", "test_hostile_feed.py",
    "test_worker_pipeline.py", "test_enrichment_pipeline.py", "test_enrich_backfill.py", "test_ops_tools.py",
    "test_analysis.py",
    "test_dlq.py", "test_health.py", "test_dev_stack.py", "test_component_failure.py", "test_dashboard.py",
)
"""Files of the longest tests (`--durations`), started first so that a parallel run
(`make test`: pytest-xdist) does not end waiting on one of them."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """--engine: the broker engine of the integration tests (also TICKTIDE_TEST_ENGINE)."""
    parser.addoption("--engine", choices=("tansu", "kafka"), default=None,
                     help="broker engine: tansu (embedded, default) or kafka (Apache Kafka, Java 17 + Maven)")


def pytest_configure(config: pytest.Config) -> None:
    """The option wins over the environment; parallel processes inherit it."""
    chosen = config.getoption("--engine")
    if chosen:
        os.environ[ENGINE_VARIABLE] = chosen
    chosen_engine()  # a wrong value stops the run here, with its name


def pytest_report_header() -> str:
    """Say which engine the run is on."""
    return f"broker engine: {chosen_engine()} ({ENGINE_VARIABLE})"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest test files first, then integration before unit tests (a stable sort).
    Under `--dist loadgroup` each unit test module runs in one process, so its module
    fixtures (parsed files, feeds) are built once; integration tests spread one by one."""
    def rank(item: pytest.Item) -> tuple[int, bool]:
        name = item.path.name
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return first, "unit" in item.path.parts
    items.sort(key=rank)
    for item in items:
        if "unit" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
