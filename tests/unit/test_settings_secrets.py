"""No secret value in a settings error, and SASL needs its credentials (issue 10 point 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError, field_validator

from streams.errors import ConfigError, explain_settings_error
from streams.settings import ENV_PREFIX, Settings, load_settings, secret_fields

SECRET = "Sup3r-S3cret-Value"
NUMBER = 918273645546372819


def test_every_secret_is_a_secret_str() -> None:
    assert {"api_token", "sasl_password", "anthropic_api_key"} <= secret_fields()
    for name in secret_fields():
        assert name in Settings.model_fields


@pytest.mark.parametrize("shape", [f'["{SECRET}"]', f'{{ nested = "{SECRET}" }}', str(NUMBER), "true",
                                   f'[{NUMBER}, "{SECRET}"]'])
def test_a_secret_of_the_wrong_type_in_a_config_file_is_never_echoed(tmp_path: Path, shape: str) -> None:
    for name in sorted(secret_fields()):
        config = tmp_path / f"{name}.toml"
        config.write_text(f"{name} = {shape}\n")
        with pytest.raises(ConfigError) as caught:
            load_settings(config)
        message = str(caught.value)
        assert message.startswith(f"invalid setting {name} (TICKTIDE_{name.upper()}): "), message
        assert SECRET not in message and str(NUMBER) not in message and "\n" not in message


def test_a_validator_quoting_a_secret_is_scrubbed() -> None:
    class Quoting(Settings):
        @field_validator("api_token", mode="before")
        @classmethod
        def _quote(cls, value: Any) -> Any:
            raise ValueError(f"token {value} is too weak")

    with pytest.raises(ValidationError) as caught:
        Quoting(api_token=SecretStr(SECRET))
    message = explain_settings_error(caught.value, ENV_PREFIX, secret_fields())
    assert message.startswith("invalid setting api_token (TICKTIDE_API_TOKEN): token ") and SECRET not in message


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(("given", "missing"), [
    ({}, "sasl_mechanism"),
    ({"sasl_mechanism": "SCRAM-SHA-512"}, "sasl_username"),
    ({"sasl_mechanism": "PLAIN", "sasl_username": "svc"}, "sasl_password"),
    ({"sasl_mechanism": "PLAIN", "sasl_username": "", "sasl_password": SECRET}, "sasl_username"),
    ({"sasl_mechanism": "PLAIN", "sasl_username": "svc", "sasl_password": ""}, "sasl_password"),
])
def test_sasl_needs_mechanism_username_and_password(protocol: str, given: dict[str, str], missing: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKTIDE_SECURITY_PROTOCOL", protocol)
    for key, value in given.items():
        monkeypatch.setenv(f"TICKTIDE_{key.upper()}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (f"invalid setting {missing} (TICKTIDE_{missing.upper()}): "
                                 f"required when security_protocol is {protocol}")
    assert SECRET not in str(caught.value)


def test_sasl_with_its_credentials_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-256",
                       "SASL_USERNAME": "svc", "SASL_PASSWORD": SECRET}.items():
        monkeypatch.setenv(f"TICKTIDE_{key}", value)
    settings = load_settings()
    assert settings.kafka_client_config()["sasl.password"] == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    assert SECRET not in settings.model_dump_json()
