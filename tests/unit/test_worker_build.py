"""The composition root builds a whole worker without a broker: every table of
tables/names.py is declared, and every table a web view or the dashboard reads is one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streams.settings import load_settings
from streams.web import dashboard
from streams.worker import build_worker
from tables import names


def test_the_worker_declares_every_named_table_and_nothing_else(tmp_path: Path) -> None:
    app = build_worker(load_settings(data_dir=tmp_path))
    assert sorted(app.tables) == sorted(names.ALL)


def test_the_dashboard_reads_only_declared_tables(tmp_path: Path) -> None:
    app = build_worker(load_settings(data_dir=tmp_path))
    for table in (names.SIGNALS, names.ENRICHMENTS):  # what /dashboard/data lists
        assert dashboard.latest_rows(app, table) == []  # KeyError for a table nobody declares


def test_every_view_is_mounted(tmp_path: Path) -> None:
    app = build_worker(load_settings(data_dir=tmp_path))
    mounted = {resource.canonical for resource in app.web.web_app.router.resources()}
    assert {"/health", "/health/system", "/live", "/ready", "/metrics", "/", "/dashboard/data",
            "/candles/{symbol}", "/indicators/{symbol}", "/anomalies", "/portfolio/{account}",
            "/orders/{order_id}", "/signals", "/assess/{symbol}"} <= mounted


def test_health_and_progress_keys() -> None:
    assert names.health_key("w1", "market.trades") == "w1/market.trades"
    assert names.progress_key(3) == "#partition/3" and names.is_progress_key("#partition/3")
    assert names.symbol_rows([("#partition/0", {}), ("BTCUSDT", {"x": 1})]) == [("BTCUSDT", {"x": 1})]


def test_a_worker_without_an_api_key_does_not_load_the_anthropic_sdk(tmp_path: Path) -> None:
    """The SDK costs about 2 s of CPU to import: a worker that never asks Claude skips it
    (Faust's decorators once imported it for venusian, on every worker start)."""
    build = ("import sys; from streams.settings import load_settings; from streams.worker import build_worker; "
             f"build_worker(load_settings(data_dir={str(tmp_path)!r})); "
             "print(sorted(m for m in sys.modules if m.startswith('anthropic.')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTIDE_")}
    done = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
