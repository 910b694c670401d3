"""User-command rules (domain/rules/commands.py, domain/rules/validity.py), the POST /commands body
and Bearer header (streams/web/trading.py) and the API-token setting: what a hostile user
or a broken producer sends is refused with the field it is about, before anything is
converted; a typed command record with bad values never reaches the ledger's decisions."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.rules.commands import Problem, command_from_text, is_symbol, limit_value
from domain.rules.validity import violations
from domain.trading import controls, ledger
from domain.trading.orders import RiskLimits, TradingConfig, limits_of
from domain.trading.portfolio import Portfolio
from schemas.records import (
    Command,
    CommandAcknowledged,
    EngageKillSwitch,
    FlattenPosition,
    PauseStrategy,
    ReleaseKillSwitch,
    SetRiskLimit,
)
from streams.errors import ConfigError
from streams.settings import load_settings
from streams.web.params import BadParameter
from streams.web.trading import bearer_token, command_from_body

T0 = datetime(2024, 7, 19, tzinfo=UTC)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(50_000), max_orders_per_minute=20),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"), order_timeout_us=30_000_000)
HOSTILE_NUMBERS = ["1e1000000", "1E+999999999", "NaN", "nan", "Infinity", "-Infinity", "sNaN", "-1", "+1",
                   " 1", "1 ", "0x10", "1_000", "\u00b2", "\u0661\u0662", "1" * 33, "9" * 1_000_000, "1.", ".5",
                   "1." + "0" * 19, "", "1,5"]


def parse(name: object, arguments: dict[str, object], user: object = "ann") -> Command | Problem:
    return command_from_text(name, arguments, user, event_time=T0, producer="test")


def problem_of(name: object, arguments: dict[str, object], user: object = "ann") -> Problem:
    found = parse(name, arguments, user)
    assert isinstance(found, Problem), found
    return found


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_a_hostile_risk_limit_value_is_refused_naming_value(value: str) -> None:
    assert problem_of("SetRiskLimit", {"limit": "max_position", "value": value}).field == "arguments.value"
    assert limit_value("max_position", value) is None


def test_valid_limits_pass_and_orders_per_minute_is_an_integer_in_range() -> None:
    command = parse("SetRiskLimit", {"limit": "max_position", "value": "0.5"})
    assert isinstance(command, SetRiskLimit) and command.value == Decimal("0.5")
    assert isinstance(parse("set_risk_limit", {"limit": "max_gross_exposure", "value": "1" * 20 + "." + "1" * 11}),
                      SetRiskLimit)
    assert limit_value("max_orders_per_minute", "1000") == 1000
    for value in ("1001", "2.5", "10000"):
        assert problem_of("SetRiskLimit", {"limit": "max_orders_per_minute", "value": value}).field == "arguments.value"


def test_each_command_is_its_own_record_and_the_old_verbs_still_name_them() -> None:
    assert isinstance(parse("PauseStrategy", {"strategy": "ema_cross"}), PauseStrategy)
    assert isinstance(parse("pause_strategy", {"strategy": "ema_cross", "account": "paper"}), PauseStrategy)
    assert isinstance(parse("kill_switch", {"state": "on"}), EngageKillSwitch)
    assert isinstance(parse("kill_switch", {"state": "off"}), ReleaseKillSwitch)
    assert isinstance(parse("EngageKillSwitch", {}), EngageKillSwitch)
    flatten = parse("flatten", {"symbol": "BTCUSDT", "account": "desk-2"})
    assert isinstance(flatten, FlattenPosition) and flatten.account == "desk-2" and flatten.symbol == "BTCUSDT"


@pytest.mark.parametrize(("command", "arguments", "field"), [
    ("launch_rocket", {}, "command"),
    ("x" * 10_000, {}, "command"),
    ("FlattenPosition", {"symbol": "BTC", "sudo": "yes"}, "arguments"),
    ("FlattenPosition", {}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "#progress"}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "B" * 33}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "../../etc"}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "BTC USDT"}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "\u0412\u0422\u0421"}, "arguments.symbol"),
    ("FlattenPosition", {"symbol": "BTC", "account": "a" * 65}, "arguments.account"),
    ("FlattenPosition", {"symbol": "BTC", "account": "paper\n"}, "arguments.account"),
    ("kill_switch", {"state": "ON"}, "arguments.state"),
    ("EngageKillSwitch", {"state": "on"}, "arguments"),
    ("PauseStrategy", {"strategy": "no_such_strategy"}, "arguments.strategy"),
    ("SetRiskLimit", {"limit": "max_leverage", "value": "1"}, "arguments.limit"),
])
def test_bad_commands_name_the_field(command: str, arguments: dict[str, object], field: str) -> None:
    problem = problem_of(command, arguments)
    assert problem.field == field
    assert len(str(problem)) < 300  # a hostile name is not echoed in full


def test_symbols_follow_the_trade_symbol_pattern() -> None:
    assert all(is_symbol(s) for s in ("BTCUSDT", "btc-usd", "BTC/USDT", "ES.F", "X", "A" * 32))
    assert not any(is_symbol(s) for s in ("", "#x", "-BTC", "A" * 33, "BTC\x00", "BTC%2F", "\u00df"))


def test_the_user_is_bounded() -> None:
    assert isinstance(parse("EngageKillSwitch", {}, "ops desk"), EngageKillSwitch)
    for user in ("", "u" * 65, 7, " ann"):
        assert problem_of("EngageKillSwitch", {}, user).field == "user"


def hostile(**fields: object) -> list[str]:
    """The fields a typed command record produced straight to the topic is refused for."""
    values: dict[str, object] = {"user": "mallory", "limit": "max_orders_per_minute", "value": Decimal(5), **fields}
    record = SetRiskLimit(envelope=SetRiskLimit.envelope_for(event_time=T0, producer="kcat"), **values)  # type: ignore[arg-type]
    return [v.field for v in violations(record, None)]


def test_a_typed_command_record_with_hostile_values_is_invalid_naming_the_field() -> None:
    assert hostile() == []
    assert hostile(value=Decimal(1001)) == ["value"]
    assert hostile(value=Decimal("2.5")) == ["value"]
    assert hostile(value=Decimal(-1)) == ["value"]
    assert hostile(value=Decimal("NaN")) == ["value"]
    assert hostile(limit="max_leverage") == ["limit"]
    assert hostile(limit="l" * 100_000) == ["limit"]
    assert hostile(user="u" * 100_000) == ["user"]
    assert hostile(account="../etc") == ["account"]
    pause = PauseStrategy(envelope=PauseStrategy.envelope_for(event_time=T0, producer="kcat"), user="m",
                          strategy="rm -rf")
    assert [v.field for v in violations(pause, None)] == ["strategy"]


def test_a_command_for_another_account_is_refused_with_an_ack_and_changes_nothing() -> None:
    state = Portfolio.open("acct", Decimal(1000))
    command = parse("EngageKillSwitch", {"account": "other"})
    assert isinstance(command, EngageKillSwitch)
    events = controls.command(state, command, CONFIG, {})
    assert len(events) == 1 and isinstance(events[0], CommandAcknowledged)
    assert not events[0].accepted and "other" in events[0].detail and not state.controls.killed


def test_a_forged_accepted_ack_with_a_hostile_limit_changes_nothing_in_the_fold() -> None:
    forged = CommandAcknowledged(
        envelope=CommandAcknowledged.envelope_for(event_time=T0, producer="forger"), account="acct",
        command_id="forged-1", command="SetRiskLimit", accepted=True, detail="",
        arguments={"limit": "max_orders_per_minute", "value": "1e1000000"})
    missing = CommandAcknowledged(
        envelope=CommandAcknowledged.envelope_for(event_time=T0, producer="forger"), account="acct",
        command_id="forged-2", command="pause_strategy", accepted=True, detail="", arguments={})
    junk = CommandAcknowledged(
        envelope=CommandAcknowledged.envelope_for(event_time=T0, producer="forger"), account="acct",
        command_id="forged-3", command="c" * 100_000, accepted=True, detail="",
        arguments={f"k{i}": "v" * 100_000 for i in range(100)})
    state = ledger.fold(Portfolio.open("acct", Decimal(1000)), [forged, missing, junk])
    assert state.controls.limits == {} and state.controls.paused == [] and not state.controls.killed
    assert state.acknowledged == ["forged-1", "forged-2", "forged-3"]
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
    ({"command": "SetRiskLimit", "arguments": {"limit": "max_position", "value": "1e1000000"}}, "arguments.value"),
    ({"command": "EngageKillSwitch", "admin": True}, "admin"),
    ({"command": ["EngageKillSwitch"]}, "command"),
    ({"arguments": {"state": "on"}}, "command"),
    ({"command": "kill_switch", "arguments": ["state", "on"]}, "arguments"),
    ({"command": "kill_switch", "arguments": {"state": 1}}, "arguments.state"),
    ({"command": "EngageKillSwitch", "target": "ops"}, "target"),
    ({"command": "EngageKillSwitch", "user": 7}, "user"),
    ({"command": "EngageKillSwitch", "arguments": {str(i): "x" for i in range(9)}}, "arguments"),
])
def test_bad_command_bodies_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        command_from_body(body)
    assert caught.value.parameter == field and caught.value.status == 400


def test_a_good_body_makes_a_command() -> None:
    command = command_from_body({"command": "FlattenPosition", "arguments": {"symbol": "BTCUSDT", "account": "paper"}})
    assert isinstance(command, FlattenPosition)
    assert (command.symbol, command.user, command.account) == ("BTCUSDT", "web", "paper")


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
