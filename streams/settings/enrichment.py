"""Claude enrichment: the Messages API, what is enriched, batching, the budget, the breaker,
the response cache, and GET /assess."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from domain.enrich.context import INPUTS


class EnrichmentSettings(BaseModel):
    """The enrichment's part of ``Settings``."""

    anthropic_api_key: SecretStr | None = Field(None, description="Also read from ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, description="Messages API base URL (tests: a fake)")
    anthropic_model: str = "claude-haiku-4-5"
    anthropic_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one API call")
    anthropic_max_retries: int = Field(2, ge=0, description="Retries of a failed API call")
    anthropic_retry_after_cap_s: float = Field(
        5.0, ge=0, description="Longest retry-after waited (a longer one: not retried) and longest backoff")
    enrich_inputs: str = Field("anomalies,indicators,news",
                               description="What is enriched: anomalies, indicators, news")
    enrich_snapshot_interval: str = Field("1m", description="Candle interval of the snapshots enriched")
    enrich_snapshot_every_s: float = Field(
        300.0, ge=0, description="Enrich a snapshot whose candle ends on a multiple of this; 0 = all")
    enrich_batch_max: int = Field(8, ge=1, description="Most events per Claude call")
    enrich_batch_wait_s: float = Field(0.5, gt=0, description="Longest wait to fill a batch")
    enrich_deadline_s: float = Field(15.0, gt=0, description="Longest an event waits for Claude")
    enrich_max_output_tokens: int = Field(1024, ge=64)
    enrich_context_tokens: int = Field(600, ge=50, description="Token budget of one event's context")
    enrich_history: int = Field(30, ge=0, description="Indicator snapshots kept per symbol as context")
    enrich_requests_per_min: int = Field(50, ge=0, description="0 = unlimited")
    enrich_input_tokens_per_min: int = Field(40_000, ge=0, description="0 = unlimited")
    enrich_output_tokens_per_min: int = Field(8_000, ge=0, description="0 = unlimited")
    enrich_daily_tokens: int = Field(2_000_000, ge=0, description="0 = unlimited")
    enrich_daily_usd: float = Field(5.0, ge=0, description="Daily spend cap; 0 = unlimited")
    enrich_usd_per_mtok_in: float = Field(1.0, ge=0, description="Price of input tokens")
    enrich_usd_per_mtok_out: float = Field(5.0, ge=0, description="Price of output tokens")
    enrich_breaker_failures: int = Field(5, ge=1, description="Failures in a row that open the breaker")
    enrich_breaker_cooldown_s: float = Field(30.0, gt=0, description="Open breaker waits this, then probes")
    enrich_cache_ttl_s: float = Field(7 * 86_400.0, gt=0, description="How long a cached answer holds")
    enrich_cache_memory_entries: int = Field(
        10_000, ge=0, description="Response-log entries a worker keeps in memory (all are on disk, in DATA_DIR)")
    enrich_refresh_fallbacks: bool = Field(
        False, description="Ask Claude again (within the budget) for events whose logged outcome was a fallback")
    assess_timeout_s: float = Field(20.0, gt=0, description="GET /assess answers 504 after this")
    assess_rate_per_min: float = Field(6.0, gt=0, le=60_000,
                                       description="GET /assess requests per minute per client address")
    assess_burst: int = Field(6, ge=1, le=1000, description="GET /assess requests a client may make at once")

    @field_validator("anthropic_api_key", mode="before")
    @classmethod
    def _api_key_from_env(cls, value: Any) -> Any:
        return value if value else os.environ.get("ANTHROPIC_API_KEY") or None

    @field_validator("enrich_inputs")
    @classmethod
    def _check_inputs(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = set(names) - set(INPUTS)
        if unknown:
            raise ValueError(f"unknown inputs {', '.join(sorted(unknown))}: use {', '.join(INPUTS)}")
        return ",".join(names)
