"""Settings precedence (CLI > env > config file > defaults) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TICKTIDE_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.broker == "localhost:9092" and settings.web_port == 6066
    assert settings.max_record_bytes == 1024 * 1024


def test_precedence_cli_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ticktide.toml"
    config.write_text('web_port = 7001\npartitions = 12\napp_id = "from-file"\n')
    assert load_settings(config).partitions == 12
    monkeypatch.setenv("TICKTIDE_WEB_PORT", "7002")
    monkeypatch.setenv("TICKTIDE_APP_ID", "from-env")
    settings = load_settings(config, app_id="from-cli", broker=None)
    assert (settings.web_port, settings.partitions, settings.app_id) == (7002, 12, "from-cli")
    monkeypatch.setenv("TICKTIDE_CONFIG", str(config))
    assert load_settings().partitions == 12


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        settings.web_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("env", "needle"), [
    ({"TICKTIDE_WEB_PORT": "abc"}, "invalid setting web_port (TICKTIDE_WEB_PORT)"),
    ({"TICKTIDE_WEB_PORT": "70000"}, "web_port"),
    ({"TICKTIDE_BROKER": "localhost"}, "invalid setting broker (TICKTIDE_BROKER): expected HOST:PORT"),
    ({"TICKTIDE_STORE": "redis"}, "store"),
    ({"TICKTIDE_CONFIG": "/nonexistent/ticktide.toml"}, "config file /nonexistent/ticktide.toml does not exist"),
    ({"TICKTIDE_ANALYSIS_INTERVALS": "1m,2m"}, "(TICKTIDE_ANALYSIS_INTERVALS): 2m is not one of the windows"),
    ({"TICKTIDE_ANALYSIS_INTERVALS": "5m"}, "(TICKTIDE_ANALYSIS_INTERVALS): must include 1m"),
])
def test_bad_values_name_the_setting(env: dict[str, str], needle: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_key_in_config_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "ticktide.toml"
    config.write_text("web_prot = 1\n")
    with pytest.raises(ConfigError, match="web_prot"):
        load_settings(config)


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKTIDE_ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("TICKTIDE_SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert "very-secret" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.kafka_client_config()["sasl.password"] == "hunter2"


def test_the_analysis_folds_every_window_unless_told_which() -> None:
    every = {spec.name for spec in load_settings().window_specs}
    assert load_settings().analysed_intervals == every and "1s" in every
    assert load_settings(analysis_intervals="1m, 5m/1m").analysed_intervals == {"1m", "5m/1m"}
