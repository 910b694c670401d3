"""User-command rules (domain/command_rules.py), the POST /commands body and Bearer header
(streams/web/trading.py) and the API-token setting: what a hostile user or a broken
producer sends is refused with the field it is about, before anything is converted."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain import controls, ledger
from domain.command_rules import check_command, check_user_command, is_symbol, limit_value
from domain.ledger import Portfolio
from domain.orders import RiskLimits, TradingConfig, limits_of
from schemas.records import CommandAcknowledged, UserCommand
from streams.errors import ConfigError
from streams.settings import load_settings
from streams.web.params import BadParameter
from streams.web.trading import bearer_token, command_from_body

T0 = datetime(2024, 7, 19, tzinfo=UTC)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(50_000), max_orders_per_minute=20),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"), order_timeout_us=30_000_000)
HOSTILE_NUMBERS = ["1e1000000", "1E+999999999", "NaN", "nan", "Infinity", "-Infinity", "sNaN", "-1", "+1",
                   " 1", "1 ", "0x10", "1_000", "²", "١٢", "1" * 33, "9" * 1_000_000, "1.", ".5",
                   "1." + "0" * 19, "", "1,5"]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_a_hostile_risk_limit_value_is_refused_naming_value(value: str) -> None:
    problem = check_command("set_risk_limit", {"limit": "max_position", "value": value})
    assert problem is not None and problem.field == "arguments.value"
    assert limit_value("max_position", value) is None


def test_valid_limits_pass_and_orders_per_minute_is_an_integer_in_range() -> None:
    assert check_command("set_risk_limit", {"limit": "max_position", "value": "0.5"}) is None
    assert check_command("set_risk_limit", {"limit": "max_gross_exposure", "value": "1" * 20 + "." + "1" * 11}) is None
    assert limit_value("max_orders_per_minute", "1000") == 1000
    for value in ("1001", "2.5", "10000"):
        problem = check_command("set_risk_limit", {"limit": "max_orders_per_minute", "value": value})
        assert problem is not None and problem.field == "arguments.value"


@pytest.mark.parametrize(("command", "arguments", "field"), [
    ("launch_rocket", {}, "command"),
    ("x" * 10_000, {}, "command"),
    ("flatten", {"symbol": "BTC", "sudo": "yes"}, "arguments"),
    ("flatten", {}, "arguments.symbol"),
    ("flatten", {"symbol": "#progress"}, "arguments.symbol"),
    ("flatten", {"symbol": "B" * 33}, "arguments.symbol"),
    ("flatten", {"symbol": "../../etc"}, "arguments.symbol"),
    ("flatten", {"symbol": "BTC USDT"}, "arguments.symbol"),
    ("flatten", {"symbol": "\u0412\u0422\u0421"}, "arguments.symbol"),
    ("flatten", {"symbol": "BTC", "account": "a" * 65}, "arguments.account"),
    ("flatten", {"symbol": "BTC", "account": "paper\n"}, "arguments.account"),
    ("kill_switch", {"state": "ON"}, "arguments.state"),
    ("pause_strategy", {"strategy": "no_such_strategy"}, "arguments.strategy"),
    ("set_risk_limit", {"limit": "max_leverage", "value": "1"}, "arguments.limit"),
])
def test_bad_commands_name_the_field(command: str, arguments: dict[str, str], field: str) -> None:
    problem = check_command(command, arguments)
    assert problem is not None and problem.field == field
    assert len(str(problem)) < 300  # a hostile name is not echoed in full


def test_symbols_follow_the_trade_symbol_pattern() -> None:
    assert all(is_symbol(s) for s in ("BTCUSDT", "btc-usd", "BTC/USDT", "ES.F", "X", "A" * 32))
    assert not any(is_symbol(s) for s in ("", "#x", "-BTC", "A" * 33, "BTC\x00", "BTC%2F", "ß"))


def test_user_and_target_are_bounded() -> None:
    assert check_user_command("kill_switch", {"state": "on"}, "ann", "ops desk") is None
    assert check_user_command("kill_switch", {"state": "on"}, "", None).field == "user"  # type: ignore[union-attr]
    assert check_user_command("kill_switch", {"state": "on"}, "u" * 65, None).field == "user"  # type: ignore[union-attr]
    assert check_user_command("kill_switch", {"state": "on"}, "ann", "t" * 65).field == "target"  # type: ignore[union-attr]


def hostile_command(value: str, n: int = 1) -> UserCommand:
    return UserCommand(envelope=UserCommand.envelope_for(event_time=T0, producer="kcat", event_id=f"h-{n}"),
                       command="set_risk_limit", arguments={"limit": "max_orders_per_minute", "value": value},
                       user="mallory")


def test_the_ledger_refuses_a_hostile_command_read_from_the_topic_with_an_ack() -> None:
    state = Portfolio.open("acct", Decimal(1000))
    events = controls.command(state, hostile_command("1e1000000"), CONFIG, {})
    assert len(events) == 1 and isinstance(events[0], CommandAcknowledged)
    assert not events[0].accepted and "value" in events[0].detail
    assert state.controls.limits == {} and limits_of(state, CONFIG) == CONFIG.limits
    junk = UserCommand(envelope=UserCommand.envelope_for(event_time=T0, producer="kcat", event_id="h-2"),
                       command="c" * 100_000, arguments={f"k{i}": "v" * 100_000 for i in range(100)}, user="x")
    ack = controls.command(state, junk, CONFIG, {})[0]
    assert isinstance(ack, CommandAcknowledged) and not ack.accepted
    assert len(ack.arguments) <= 16 and all(len(v) <= 64 for v in ack.arguments.values())


def test_a_forged_accepted_ack_with_a_hostile_limit_changes_nothing_in_the_fold() -> None:
    forged = CommandAcknowledged(
        envelope=CommandAcknowledged.envelope_for(event_time=T0, producer="forger"), account="acct",
        command_id="forged-1", command="set_risk_limit", accepted=True, detail="",
        arguments={"limit": "max_orders_per_minute", "value": "1e1000000"})
    missing = CommandAcknowledged(
        envelope=CommandAcknowledged.envelope_for(event_time=T0, producer="forger"), account="acct",
        command_id="forged-2", command="pause_strategy", accepted=True, detail="", arguments={})
    state = ledger.fold(Portfolio.open("acct", Decimal(1000)), [forged, missing])
    assert state.controls.limits == {} and state.controls.paused == []
    assert state.acknowledged == ["forged-1", "forged-2"]
    # a row written before the rules, holding such an override, is read without parsing it
    state.controls.limits = {"max_orders_per_minute": "1e1000000", "max_position": "0.5"}
    assert limits_of(state, CONFIG) == RiskLimits(Decimal("0.5"), Decimal(50_000), 20)


TOKEN = "0123456789abcdef-token"


def test_bearer_scheme_is_case_insensitive_and_required() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN.encode()
    assert bearer_token(f"bearer {TOKEN}") == TOKEN.encode()
    assert bearer_token(f"BEARER   {TOKEN} ") == TOKEN.encode()
    for header in (None, "", TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer ", f"Token {TOKEN}",
                   "Bearer " + "x" * 100_000, "Bearer \udcff\u00e9"):
        given = bearer_token(header)
        assert given is None or given != TOKEN.encode()


@pytest.mark.parametrize(("body", "field"), [
    ({"command": "set_risk_limit", "arguments": {"limit": "max_position", "value": "1e1000000"}}, "arguments.value"),
    ({"command": "kill_switch", "arguments": {"state": "on"}, "admin": True}, "admin"),
    ({"command": ["kill_switch"]}, "command"),
    ({"arguments": {"state": "on"}}, "command"),
    ({"command": "kill_switch", "arguments": ["state", "on"]}, "arguments"),
    ({"command": "kill_switch", "arguments": {"state": 1}}, "arguments.state"),
    ({"command": "kill_switch", "arguments": {"state": "on"}, "target": {"x": 1}}, "target"),
    ({"command": "kill_switch", "arguments": {"state": "on"}, "user": 7}, "user"),
    ({"command": "kill_switch", "arguments": {str(i): "x" for i in range(9)}}, "arguments"),
])
def test_bad_command_bodies_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        command_from_body(body)
    assert caught.value.parameter == field and caught.value.status == 400


def test_a_good_body_makes_a_command() -> None:
    command = command_from_body({"command": "flatten", "arguments": {"symbol": "BTCUSDT", "account": "paper"}})
    assert command.command == "flatten" and command.user == "web" and command.arguments["account"] == "paper"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("TICKTIDE_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.mark.parametrize("token", ["", "short-secret", "x" * 15, "sixteen chars ok", "\u00e9" * 20])
def test_an_empty_short_or_odd_api_token_is_a_config_error_that_never_shows_it(
        clean_env: pytest.MonkeyPatch, token: str) -> None:
    clean_env.setenv("TICKTIDE_API_TOKEN", token)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "TICKTIDE_API_TOKEN" in message and "api_token" in message
    assert not token or token not in message


def test_a_long_token_is_accepted_and_unset_turns_commands_off(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().api_token is None
    clean_env.setenv("TICKTIDE_API_TOKEN", TOKEN)
    token = load_settings().api_token
    assert token is not None and token.get_secret_value() == TOKEN and TOKEN not in repr(load_settings())
