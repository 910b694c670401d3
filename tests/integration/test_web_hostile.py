"""Hostile input against ONE real worker on the test's own broker: a few hundred fuzzed
requests over every route (random, unicode and huge parameters, bad bodies, bad auth
headers, path-traversal-ish symbols) never get a 500 and never hang, and the worker stays
ready; hostile records produced straight to user.commands and trading.commands (each
command, mark, expiry request and order type with bad values, the old trusted-timer
forgery) are dead-lettered and change nothing, and a valid expiry request from anyone
closes only what is due by its own event time; an empty API token stops the worker at
start (exit 2) without showing it."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.records import (
    DeadLetter,
    EngageKillSwitch,
    Event,
    ExpireOrders,
    Mark,
    OrderType,
    PauseStrategy,
    PlaceOrder,
    SetRiskLimit,
    Side,
    Trade,
    UserCommand,
    utc_now,
)
from streams.kafka.admin import create_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tests.harness import BrokerUnderTest, WorkerProcess, run_cli, settings_for, start_worker

TOKEN = "fuzz-token-0123456789abcdef"
ACCOUNT = "paper"
CLIENT_TIMEOUT_S = 10.0
SEED = 20240719
GET_ROUTES = ["/health", "/metrics", "/live", "/ready", "/", "/dashboard/data", "/health/system",
              "/candles/{}", "/indicators/{}", "/anomalies", "/signals", "/portfolio/{}", "/orders/{}",
              "/assess/{}"]
DOCUMENTED_5XX = {("/health/system", 503), ("/ready", 503), ("/assess/{}", 504)}
"""Answers that are not errors of ours: no health table here yet, not ready, no assessment in time."""
NASTY = ["", "..", "../../etc/passwd", "%2e%2e%2f", "#internal", "BTCUSDT" * 40, "²", "١٢٣", "\u202e", "\x00",
         "\uffff", "😀" * 50, "%ff%fe", "a%00b", "' OR 1=1 --", "<script>", "NaN", "-1", "1e1000000",
         "99999999999999999999", "0", " ", "BTC/USDT", "x" * 5000]


def random_text(rng: random.Random) -> str:
    """A parameter value: nasty, random unicode, random bytes (percent-encoded) or plain."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(NASTY)
    if kind == 1:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFFF)]))
                       for _ in range(rng.randrange(1, 40)))
    if kind == 2:
        return urllib.parse.unquote_to_bytes(urllib.parse.quote(bytes(rng.randrange(256) for _ in range(
            rng.randrange(1, 20))))).decode("latin-1")
    return rng.choice(["BTCUSDT", "ETHUSDT", "paper", "paper:abc", "1m", "5"])


def quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


def request(worker: WorkerProcess, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request with a client timeout: (status, body, headers). A hang fails it."""
    host, port = worker.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def fuzzed_get(rng: random.Random) -> tuple[str, str]:
    route = rng.choice(GET_ROUTES)
    path = route.format(quote(random_text(rng))) if "{}" in route else route
    names = ["limit", "interval", "symbol", "account", rng.choice(["x", "limit[]", "__proto__", "LIMIT", "€"])]
    query = [(rng.choice(names), random_text(rng)) for _ in range(rng.randrange(0, 4))]
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
    return route, path


def fuzzed_body(rng: random.Random) -> bytes:
    choices: list[Any] = [
        [1, 2, 3], 42, "kill_switch", None, True, {"command": None},
        {"command": "kill_switch", "arguments": {"state": random_text(rng)}},
        {"command": "set_risk_limit", "arguments": {"limit": "max_position", "value": random_text(rng)}},
        {"command": "flatten", "arguments": {"symbol": random_text(rng), "account": random_text(rng)}},
        {"command": random_text(rng), "arguments": {random_text(rng): random_text(rng)}},
        {"command": "kill_switch", "arguments": {"state": "on"}, "target": [1], "user": {"a": 1}},
        {"command": "flatten", "arguments": {"symbol": "BTC"}, "extra": 1},
    ]
    kind = rng.randrange(6)
    if kind == 0:
        return b"[" * 100_000 + b"]" * 100_000  # deep nesting (and over the size cap)
    if kind == 1:
        return b'{"command": "' + b"x" * 200_000 + b'"}'  # huge
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))  # not UTF-8, not JSON
    if kind == 3:
        return b"[" * 3000 + b"]" * 3000  # deep, small
    if kind == 4:
        return b'{"command": "set_risk_limit", "arguments": {"limit": "max_position", "value": NaN}}'
    return json.dumps(rng.choice(choices)).encode()


def fuzzed_auth(rng: random.Random) -> dict[str, str]:
    return rng.choice([{}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
                       {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Bearer "},
                       {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"bearer {TOKEN}"},
                       {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer " + "A" * 4000}])


@pytest.fixture
def hostile_settings(isolated_broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    settings = settings_for(isolated_broker, tmp_path, api_token=TOKEN, trading_account=ACCOUNT,
                            order_timeout_s=900)
    create_topics(settings)
    return settings


@pytest.fixture
def guarded_worker(hostile_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One worker with POST /commands on (an API token is set)."""
    started = start_worker(hostile_settings, tmp_path / "worker.log")
    yield started
    started.discard()


def assert_ready(worker: WorkerProcess) -> None:
    deadline = time.monotonic() + 60
    while (status := request(worker, "GET", "/ready")[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 200, worker.tail()


def test_fuzzed_and_hostile_requests_never_get_a_500_or_hang_and_the_worker_stays_ready(
        guarded_worker: WorkerProcess) -> None:
    fuzz(guarded_worker)
    specific_hostile_requests(guarded_worker)  # the same worker, after the fuzz


def fuzz(worker: WorkerProcess) -> None:
    """A few hundred fuzzed requests over every route: no 500, no hang, still ready."""
    rng = random.Random(SEED)
    seen: dict[int, int] = {}
    for _ in range(250):
        route, path = fuzzed_get(rng)
        status, body, _ = request(worker, "GET", path)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500 or (route, status) in DOCUMENTED_5XX, (path, status, body[:300])
        if status in (400, 429) or (status == 404 and body.startswith(b"{")):  # ours: JSON saying what is wrong
            assert "error" in json.loads(body), (path, body[:300])
        elif status == 404:  # no route matched (e.g. an empty or '/'-containing symbol): aiohttp's answer
            assert body == b"404: Not Found", (path, body[:300])
    for _ in range(150):
        content_type = rng.choice(["application/json", "application/json; charset=utf-8", "text/plain",
                                   "application/x-www-form-urlencoded", "", "APPLICATION/JSON"])
        headers = {**fuzzed_auth(rng), **({"Content-Type": content_type} if content_type else {})}
        status, body, _ = request(worker, "POST", "/commands", fuzzed_body(rng), headers)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (headers, status, body[:300])
        authorised = headers.get("Authorization", "").lower() == f"bearer {TOKEN}".lower()
        if not authorised:
            assert status == 401 and TOKEN not in body.decode(), (headers, body[:300])
        else:
            assert status in (202, 400, 413), (status, body[:300])
    # raw bytes aiohttp must parse: not UTF-8, no percent-encoding
    host, port = worker.url.removeprefix("http://").split(":")
    for raw in (b"GET /candles/\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /anomalies?symbol=\xc3\x28&limit=\xb2 HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_S) as connection:
            connection.sendall(raw)
            answer = connection.recv(4096)
        assert answer[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4"), answer[:200]
    assert seen.get(400, 0) > 100 and seen.get(401, 0) > 20, seen  # the fuzz reached the checks
    assert_ready(worker)


def specific_hostile_requests(worker: WorkerProcess) -> None:
    """Reported cases get the documented answers."""
    json_type = {"Content-Type": "application/json"}
    for limit in ("²", "-1", "99999999999999999999", "1e3", " 5", "0"):
        status, body, _ = request(worker, "GET", f"/anomalies?symbol=BTCUSDT&limit={quote(limit)}")
        assert status == 400 and json.loads(body)["parameter"] == "limit", (limit, body)
    status, body, _ = request(worker, "GET", "/anomalies?symbol=BTCUSDT&limit=5&limit=6")
    assert status == 400 and json.loads(body)["parameter"] == "limit"
    status, body, _ = request(worker, "GET", "/signals?symbol=BTCUSDT&debug=1")
    assert status == 400 and json.loads(body)["parameter"] == "debug"
    status, body, _ = request(worker, "GET", f"/candles/{'B' * 5000}")
    assert status == 400 and json.loads(body)["parameter"] == "symbol"
    status, body, _ = request(worker, "GET", f"/portfolio/{quote('../../etc/passwd')}")
    assert status == 400 and json.loads(body)["parameter"] == "account"

    kill = json.dumps({"command": "ReleaseKillSwitch"}).encode()
    status, body, headers = request(worker, "POST", "/commands", kill, json_type)
    assert status == 401 and headers.get("www-authenticate") == "Bearer" and TOKEN not in body.decode()
    status, _, _ = request(worker, "POST", "/commands", kill, {**json_type, "Authorization": TOKEN})
    assert status == 401  # the token without the Bearer scheme is not enough
    auth = {**json_type, "Authorization": f"Bearer {TOKEN}"}
    hostile = {"command": "SetRiskLimit", "arguments": {"limit": "max_orders_per_minute", "value": "1e1000000"}}
    status, body, _ = request(worker, "POST", "/commands", json.dumps(hostile).encode(), auth)
    assert status == 400 and json.loads(body)["parameter"] == "arguments.value"
    status, body, _ = request(worker, "POST", "/commands", kill, {**auth, "Content-Type": "text/plain"})
    assert status == 400 and json.loads(body)["parameter"] == "Content-Type"
    status, body, _ = request(worker, "POST", "/commands", b"x" * 100_000, auth)
    assert status == 413 and json.loads(body)["parameter"] == "body"
    status, body, _ = request(worker, "POST", "/commands", kill, {**auth, "Authorization": f"bEaReR {TOKEN}"})
    assert status == 202 and json.loads(body)["accepted"] is True

    statuses = [request(worker, "GET", "/assess/BTCUSDT") for _ in range(8)]  # default: 6 a minute, burst 6
    limited = [(s, h) for s, _, h in statuses if s == 429]
    assert limited and all(int(h["retry-after"]) >= 1 for _, h in limited), [s for s, _, _ in statuses]
    assert_ready(worker)


def wait_for_letters(settings: Settings, topic: str, count: int, timeout: float = 60.0) -> list[DeadLetter]:
    """The dead letters of ``topic``, once there are ``count`` of them."""
    deadline, letters = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        letters = [r.event for r in read_topic(settings, "system.deadletter", idle_timeout=1, until_end=True)
                   if isinstance(r, Consumed) and isinstance(r.event, DeadLetter)
                   and r.event.source_topic == topic]
        if len(letters) >= count:
            return letters
    raise AssertionError(f"{len(letters)} of {count} dead letters of {topic}")


def test_hostile_records_on_the_command_topics_change_nothing_also_after_a_restart(
        hostile_settings: Settings, tmp_path: Path) -> None:
    codec = AvroCodec(make_registry(None))
    now = utc_now()
    worker = start_worker(hostile_settings, tmp_path / "worker-1.log")
    try:
        def envelope(cls: type[Event], at: Any = None, producer: str = "kcat", **extra: Any) -> Any:
            return cls.envelope_for(event_time=at or now, producer=producer, **extra)

        def mark(price: str, size: str, at: Any, event_id: str) -> Mark:
            return Mark(envelope=envelope(Mark, at, event_id=event_id), symbol="BTCUSDT", price=Decimal(price),
                        size=Decimal(size), trade_count=1, last_trade_id=1, slice_start=at)

        bad_commands = [  # valid Avro, invalid by their type's rules: what a foreign producer could send
            SetRiskLimit(envelope=envelope(SetRiskLimit), user="mallory", limit="max_orders_per_minute",
                         value=Decimal(1001)),
            SetRiskLimit(envelope=envelope(SetRiskLimit), user="mallory", limit="max_leverage", value=Decimal(1)),
            PauseStrategy(envelope=envelope(PauseStrategy), user="mallory", strategy="rm -rf /"),
            EngageKillSwitch(envelope=envelope(EngageKillSwitch), user="mallory", account="../../etc/passwd"),
            EngageKillSwitch(envelope=envelope(EngageKillSwitch), user="m" * 100_000),
            UserCommand(envelope=envelope(UserCommand, producer="agent.ledger.timer"), command="expire_orders",
                        user="system"),  # the old trusted-timer forgery: no longer a command at all
        ]
        bad_inputs = [
            mark("0", "1", now, "zero-price"),
            mark("100", "-1", now, "negative-size"),
            mark("100", "1", now.replace(year=2999), "future-mark"),
            ExpireOrders(envelope=envelope(ExpireOrders, now.replace(year=2999)), account=ACCOUNT),
            PlaceOrder(envelope=envelope(PlaceOrder), order_id=f"{ACCOUNT}:forged", account=ACCOUNT,
                       symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal("0.001"),
                       strategy="not-a-strategy"),
            Trade(envelope=envelope(Trade), venue="mark", symbol="BTCUSDT", trade_id=1, price=Decimal(1),
                  size=Decimal(1000), taker_side=Side.BUY, trade_time=now),  # the old form of a mark
            UserCommand(envelope=envelope(UserCommand, producer="agent.ledger.timer"), command="expire_orders",
                        user="system"),
        ]
        # a real order, open for 900 s, and expiry requests from anyone before it is due
        opening = mark("100", "1", now - timedelta(seconds=1), "opening")
        order = PlaceOrder(envelope=envelope(PlaceOrder), order_id=f"{ACCOUNT}:probe", account=ACCOUNT,
                           symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal("0.001"))
        early = [ExpireOrders(envelope=envelope(ExpireOrders, now + timedelta(seconds=s)), account=ACCOUNT)
                 for s in (0, 290)]  # 290: about as late as the future-skew bound (300 s) lets anyone claim
        with EventProducer(hostile_settings) as producer:  # raw bytes, as a producer we do not control sends them
            for record in bad_commands:
                producer.send_raw("user.commands", b"mallory", codec.encode(record))
            for record in [opening, order, *bad_inputs, *early]:
                producer.send_raw("trading.commands", ACCOUNT.encode(), codec.encode(record))
        letters = wait_for_letters(hostile_settings, "user.commands", len(bad_commands))
        assert {letter.original_value for letter in letters} == {codec.encode(r) for r in bad_commands}
        letters = wait_for_letters(hostile_settings, "trading.commands", len(bad_inputs))
        assert {letter.original_value for letter in letters} == {codec.encode(r) for r in bad_inputs}
        messages = " ".join(letter.error_message for letter in letters)
        for field in ("price", "size", "event_time", "strategy", "Trade on trading.commands"):
            assert field in messages, messages
        for worker_log in ("worker-2.log", "worker-3.log"):
            assert_ready(worker)
            status, body, _ = request(worker, "GET", f"/portfolio/{ACCOUNT}")
            portfolio = json.loads(body)
            assert status == 200 and portfolio["controls"] == {"paused": [], "limits": {}, "kill_switch": False}
            assert [o["order_id"] for o in portfolio["open_orders"]] == [f"{ACCOUNT}:probe"]  # still open
            assert request(worker, "GET", f"/orders/{ACCOUNT}:forged")[0] == 404
            worker.stop()
            worker = start_worker(hostile_settings, tmp_path / worker_log)  # the inputs are re-read
    finally:
        worker.stop()


@pytest.mark.parametrize("token", ["", "too-short-token"])
def test_an_empty_or_short_api_token_stops_the_worker_at_start_without_showing_it(token: str) -> None:
    result = run_cli("worker", timeout=60, TICKTIDE_API_TOKEN=token)
    assert result.returncode == 2, result.stderr
    assert "TICKTIDE_API_TOKEN" in result.stderr and "16 characters" in result.stderr
    assert not token or token not in result.stderr + result.stdout
