"""The dashboard in a real browser: headless Chromium (Debian's package, driven through
its chromedriver) loads `/` from a worker fed with trades; the candle chart and the
health table render with live data. The screenshot is kept as a test artifact. And its
data: the enrichments of anomalies show up in `/dashboard/data`."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.factories import T0, make_anomaly, make_trade
from tests.harness import REPO, WorkerProcess, http_json

ARTIFACTS = REPO / ".ticktide" / "artifacts"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
READ_PAGE = """
const text = id => document.getElementById(id).textContent;
const candles = {};
for (const s of arguments[0]) {
  candles[s] = document.querySelectorAll(`svg[data-symbol="${s}"] g.candle`).length;
}
const row = document.querySelector('tr[data-component="market.trades"]');
const heading = document.querySelector("#chart-BTCUSDT h3");
return {candles, trades_row: row ? [...row.cells].map(c => c.textContent) : [],
        system_status: text("system-status"), deadletters: text("deadletters"), signals: text("signals"),
        heading: heading ? heading.textContent : "",
        workers: [...document.querySelectorAll("#workers tbody tr")].map(r => r.dataset.worker)};
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "install Debian's chromium and chromium-driver (`make test-tools` does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    yield chrome
    chrome.quit()


def _feed(settings: Settings) -> None:
    """Five minutes of event time for two symbols, with a trend so candles differ."""
    with EventProducer(settings) as producer:
        for i in range(600):
            symbol = SYMBOLS[i % 2]
            price = Decimal(60000 if symbol == "BTCUSDT" else 3000) + Decimal(i % 37) - Decimal(i) / 10
            producer.send("market.trades", make_trade(symbol=symbol, trade_id=i, price=price,
                                                      trade_time=T0 + timedelta(milliseconds=500 * i)))


def test_dashboard_shows_candles_and_health_with_live_data(
        stack_settings: Settings, worker: WorkerProcess, browser: webdriver.Chrome, tmp_path: Path) -> None:
    _feed(stack_settings)
    worker.wait_until(lambda h: h["agents"].get("market.trades", {}).get("processed", 0) == 600, 90,
                      "the trades to be processed")
    browser.get(f"{worker.url}/")
    wait = WebDriverWait(browser, 60, poll_frequency=0.5)

    def page(driver: webdriver.Chrome) -> dict[str, Any]:
        """What the page shows now, read in one go (it re-renders every 2 s)."""
        return dict(driver.execute_script(READ_PAGE, list(SYMBOLS)))

    shown: dict[str, Any] = {}

    def rendered(driver: webdriver.Chrome) -> bool:
        shown.update(page(driver))
        return (all(n >= 5 for n in shown["candles"].values()) and shown["system_status"] == "RUNNING"
                and shown["trades_row"][1:2] == ["RUNNING"] and shown["trades_row"][3:4] == ["600"])

    # Components' statuses reach the health table through their own partitions, so the
    # system status can trail market.trades' row by a beat: wait for both.
    try:
        wait.until(rendered)
    except TimeoutException:
        raise AssertionError(f"wanted 5+ candles per symbol, the system and market.trades running with "
                             f"its 600 trades; the page shows {shown}") from None
    assert shown["deadletters"] == "0"
    assert "No signals yet." in shown["signals"]  # the empty state
    assert shown["heading"].startswith("BTCUSDT  close ")
    assert shown["workers"] == [worker.health()["worker_id"]]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    shutil.copy(shot, tmp_path / "dashboard.png")
    print(f"dashboard screenshot: {shot}")


def test_dashboard_data_lists_the_latest_enrichments(stack_settings: Settings, worker: WorkerProcess) -> None:
    """Anomalies are enriched (the fallback: no API key here) and the dashboard lists the
    enrichments (it once asked for tables nobody declared and always showed none)."""
    sent = set()
    with EventProducer(stack_settings) as producer:
        for i, symbol in enumerate(SYMBOLS * 2):
            anomaly = make_anomaly(symbol=symbol, value=4.5 + i)
            sent.add(anomaly.envelope.event_id)
            producer.send("analysis.anomalies", anomaly)
    deadline, shown = time.monotonic() + 90, []
    while time.monotonic() < deadline:
        status, body = http_json(f"{worker.url}/dashboard/data")
        assert status == 200, body
        shown = body["enrichments"]
        if {e["subject_event_id"] for e in shown} >= sent:
            break
        time.sleep(1)
    assert {e["subject_event_id"] for e in shown} >= sent, shown
    assert {e["symbol"] for e in shown} == set(SYMBOLS)
    assert all(e["source"] == "FALLBACK" for e in shown)
    assert uuid.UUID(shown[0]["envelope"]["event_id"])
