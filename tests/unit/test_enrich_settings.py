"""Enrichment settings: the API key from ANTHROPIC_API_KEY, never shown; inputs checked."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from domain.enrich.breaker import CircuitBreaker
from domain.enrich.budget import Budget, Limits
from domain.enrich.cache import ResponseCache
from domain.enrich.context import build_context, subject_of
from schemas.records import EnrichmentSource
from streams.claude.enricher import Enricher, client_from
from streams.claude.metrics import EnrichmentMetrics
from streams.errors import ConfigError
from streams.settings import load_settings
from tests.factories import make_anomaly, make_news


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TICKTIDE_") or key == "ANTHROPIC_API_KEY":
            monkeypatch.delenv(key)


def test_api_key_comes_from_either_variable_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().anthropic_api_key is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    settings = load_settings()
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-secret"
    assert "sk-ant-secret" not in repr(settings) and "sk-ant-secret" not in str(settings)
    monkeypatch.setenv("TICKTIDE_ANTHROPIC_API_KEY", "sk-ant-other")
    assert load_settings().anthropic_api_key.get_secret_value() == "sk-ant-other"  # type: ignore[union-attr]


def test_unknown_enrichment_inputs_are_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKTIDE_ENRICH_INPUTS", "news,tweets")
    with pytest.raises(ConfigError, match=r"enrich_inputs .*tweets"):
        load_settings()


def test_without_a_key_every_event_gets_the_fallback_and_says_so() -> None:
    settings = load_settings()
    assert client_from(settings) is None
    enricher = Enricher(client=None, budget=Budget(Limits()), breaker=CircuitBreaker(),
                        cache=ResponseCache(60), metrics=EnrichmentMetrics(CollectorRegistry()))
    contexts = [build_context(subject_of(e), [], 500) for e in (make_anomaly(), make_news())]
    outcomes = asyncio.run(enricher.enrich(contexts, 5))
    assert [o.source for o in outcomes] == [EnrichmentSource.FALLBACK] * 2
    assert all(o.reason == "no_api_key" and "no_api_key" in o.assessment.rationale for o in outcomes)
    assert "volume_spike" in outcomes[0].assessment.risk_flags
    assert outcomes[1].assessment.sentiment == 0
