"""The structured assessment: its JSON schema, validation of an answer, and the
deterministic fallback assessor.

The model's answer is untrusted like the news it read: ``validate_answer`` keeps only the
schema's fields, checks every type and range and the fixed set of risk flags, and raises
``InvalidAnswer`` naming the first problem. Nothing else ever reaches a topic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from schemas.records import Regime

RISK_FLAGS = (
    "high_volatility", "volume_spike", "price_gap", "overbought", "oversold",
    "trend_reversal", "liquidity", "regulatory", "security_incident", "macro_event",
    "unverified_news", "thin_data",
)
"""The only risk flags an Enrichment may carry."""
REGIMES = tuple(r.value.lower() for r in Regime)
MAX_RATIONALE = 280
ASSESSMENT_FIELDS = ("id", "regime", "sentiment", "risk_flags", "confidence", "rationale")


class InvalidAnswer(ValueError):
    """The model's answer does not fit the schema or its ranges."""


@dataclass(frozen=True)
class Assessment:
    """What an Enrichment says about its subject."""

    regime: Regime
    sentiment: float
    risk_flags: tuple[str, ...]
    confidence: float
    rationale: str


ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The id of the item assessed."},
        "regime": {"type": "string", "enum": list(REGIMES)},
        "sentiment": {"type": "number", "minimum": -1, "maximum": 1},
        "risk_flags": {"type": "array", "items": {"type": "string", "enum": list(RISK_FLAGS)},
                       "maxItems": len(RISK_FLAGS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string", "maxLength": MAX_RATIONALE},
    },
    "required": list(ASSESSMENT_FIELDS),
    "additionalProperties": False,
}
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"assessments": {"type": "array", "items": ITEM_SCHEMA}},
    "required": ["assessments"],
    "additionalProperties": False,
}
"""Input schema of the one (side-effect free) tool the model must call."""


def _number(item: dict[str, Any], name: str, low: float, high: float) -> float:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAnswer(f"{name} is not a number: {value!r}"[:200])
    if not low <= value <= high:
        raise InvalidAnswer(f"{name} {value} outside [{low}, {high}]")
    return float(value)


def validate_item(item: Any) -> tuple[str, Assessment]:
    """One assessment of the answer: (item id, Assessment), or InvalidAnswer."""
    if not isinstance(item, dict):
        raise InvalidAnswer("an assessment is not an object")
    extra = sorted(set(item) - set(ASSESSMENT_FIELDS))
    if extra:
        raise InvalidAnswer(f"fields outside the schema: {', '.join(map(str, extra))[:200]}")
    item_id, regime, flags, rationale = (item.get(k) for k in ("id", "regime", "risk_flags", "rationale"))
    if not isinstance(item_id, str) or not item_id:
        raise InvalidAnswer("id is missing")
    if regime not in REGIMES:
        raise InvalidAnswer(f"regime {regime!r} is not one of {', '.join(REGIMES)}"[:200])
    if not isinstance(flags, list) or any(f not in RISK_FLAGS for f in flags):
        raise InvalidAnswer(f"risk_flags {flags!r} not from the fixed set"[:200])
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE:
        raise InvalidAnswer(f"rationale is not a string of at most {MAX_RATIONALE} characters")
    return item_id, Assessment(
        regime=Regime(regime.upper()), sentiment=_number(item, "sentiment", -1, 1),
        risk_flags=tuple(dict.fromkeys(flags)), confidence=_number(item, "confidence", 0, 1),
        rationale=rationale.strip())


def validate_answer(answer: Any, expected_ids: list[str]) -> tuple[dict[str, Assessment], dict[str, str]]:
    """The valid assessments of the expected ids, and why each other expected id has none.

    A whole answer of the wrong shape raises InvalidAnswer; one bad item only costs its
    own id. Items for ids not asked about (an injected "change the other symbol") are
    ignored; two items for one id invalidate that id.
    """
    if not isinstance(answer, dict) or set(answer) != {"assessments"} or not isinstance(
            answer["assessments"], list):
        raise InvalidAnswer("the answer is not {\"assessments\": [...]}")
    valid: dict[str, Assessment] = {}
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for item in answer["assessments"]:
        item_id = item.get("id") if isinstance(item, dict) else None
        if item_id not in expected_ids:
            continue
        if item_id in seen:
            valid.pop(item_id, None)
            problems[item_id] = "two assessments for one id"
            continue
        seen.add(item_id)
        try:
            valid[item_id] = validate_item(item)[1]
        except InvalidAnswer as exc:
            problems[item_id] = str(exc)
    for item_id in expected_ids:
        if item_id not in valid and item_id not in problems:
            problems[item_id] = "no assessment for this id"
    return valid, problems


def fallback_assessment(facts: dict[str, Any], history: list[dict[str, Any]], reason: str) -> Assessment:
    """A deterministic, rule-based assessment from the same context Claude would see:
    trend from the EMAs, volatility regime from the ATR, sentiment 0 for news."""
    latest = {k: v for k, v in (history[-1] if history else {}).items() if v is not None}
    values = {**latest, **{k: v for k, v in facts.items() if v is not None}}
    close, fast, slow = values.get("close"), values.get("ema_fast"), values.get("ema_slow")
    atr, rsi = values.get("atr"), values.get("rsi")
    flags: list[str] = []
    regime, sentiment, confidence = Regime.UNKNOWN, 0.0, 0.1
    if close and atr is not None and atr / close > 0.02:
        regime, confidence = Regime.VOLATILE, 0.3
        flags.append("high_volatility")
    elif close and fast is not None and slow is not None:
        spread = (fast - slow) / close
        regime = Regime.TRENDING if abs(spread) > 0.002 else Regime.RANGING
        confidence = 0.3
    if facts.get("kind") != "news" and fast is not None and slow is not None and close:
        scale = atr if atr else close * 0.01
        sentiment = max(-1.0, min(1.0, (fast - slow) / scale / 2)) if scale else 0.0
    if rsi is not None:
        flags += ["overbought"] if rsi > 70 else ["oversold"] if rsi < 30 else []
    rule = facts.get("rule")
    flags += {"volume_zscore": ["volume_spike"], "gap": ["price_gap"],
              "return_sigma": ["high_volatility"]}.get(str(rule), [])
    if facts.get("kind") == "news":
        flags.append("unverified_news")
    if not history:
        flags.append("thin_data")
    return Assessment(regime=regime, sentiment=round(sentiment, 4),
                      risk_flags=tuple(dict.fromkeys(flags)), confidence=confidence,
                      rationale=f"Fallback assessment ({reason}): rule-based on EMAs and ATR.")
