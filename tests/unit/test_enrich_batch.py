"""Backfill through the Message Batches API, the pure parts: price and limits, the prompt
cache's minimum, the token split, and the state file that lets a rerun pick a batch up
(hostile or broken files included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.enrich.batch import (
    BadState,
    PendingBatch,
    TokenSplit,
    batch_limits,
    min_cacheable_tokens,
    state_from_json,
    state_json,
)
from domain.enrich.budget import Budget, Limits, OverBudget
from streams.claude.client import PROMPT_TEXT, ClaudeClient, message_params, usage_split
from streams.errors import InvalidInput
from streams.tools.backfill import StateFile

KEY = "ab" * 32
BATCH = PendingBatch("msgbatch_01", "2026-11-30T19:00:00+00:00", "claude-haiku-4-5", "",
                     {"r0": ((KEY, "subject-1"), ("cd" * 32, "subject-2")), "r1": (("ef" * 32, "subject-3"),)})


@pytest.mark.parametrize(("model", "minimum"), [
    ("claude-haiku-4-5", 4096), ("claude-haiku-4-5-20251001", 4096), ("claude-opus-4-6", 4096),
    ("claude-3-5-haiku-20241022", 2048), ("claude-3-haiku-20240307", 2048), ("claude-sonnet-4-6", 2048),
    ("claude-sonnet-4-5", 1024), ("claude-opus-4-1", 1024), ("claude-3-7-sonnet-latest", 1024),
])
def test_the_cache_minimum_follows_the_model(model: str, minimum: int) -> None:
    assert min_cacheable_tokens(model) == minimum


def test_a_batch_costs_half_and_is_held_to_the_daily_limits_only() -> None:
    live = Limits(requests_per_min=50, daily_usd=1.0, usd_per_mtok_in=1.0, usd_per_mtok_out=5.0)
    batch = batch_limits(live)
    assert batch.cost_usd(1_000_000, 100_000) == pytest.approx(live.cost_usd(1_000_000, 100_000) / 2)
    budget = Budget(batch)
    for _ in range(200):  # a live budget refuses the 51st request of a minute
        budget.reserve(0.0, 1000, 100)
    with pytest.raises(OverBudget) as refused:
        for _ in range(10_000):
            budget.reserve(0.0, 100_000, 1000)
    assert refused.value.limit in ("daily_usd", "daily_tokens")


def test_the_prompt_is_marked_for_the_cache_only_when_it_is_long_enough() -> None:
    plain = message_params("claude-sonnet-4-5", 512, "<data>\n{}\n</data>")
    assert isinstance(plain["system"], str) and plain["tool_choice"]["type"] == "tool"
    marked = message_params("claude-sonnet-4-5", 512, "<data>\n{}\n</data>", cache_prefix=True)
    assert marked["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert marked["system"][0]["text"] == plain["system"] and marked["messages"] == plain["messages"]
    client = ClaudeClient(api_key="k", model="claude-haiku-4-5")
    assert client.prefix_tokens < len(PROMPT_TEXT) and not client.cache_prefix  # ours is far below 4096
    client.prefix_tokens = 4096
    assert client.cache_prefix


def test_the_usage_split_reads_the_cache_fields_and_ignores_nonsense() -> None:
    usage = {"input_tokens": 40, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 0,
             "output_tokens": 55}
    split = usage_split({"usage": usage})
    assert split == TokenSplit(40, 1200, 0, 55) and split.input_tokens == 1240
    assert usage_split({"usage": {**usage, "cache_read_input_tokens": -5, "input_tokens": True}}) == TokenSplit(
        0, 1200, 0, 55)
    assert usage_split({"nothing": 1}) is None
    assert (split + split).per_event(4) == {"cache_read": 0.0, "cache_write": 600.0, "uncached": 20.0}


def test_remembered_batches_survive_a_round_trip(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "deep" / "state.json")
    assert state.load() == []
    state.save([BATCH])
    assert state.load() == [BATCH]
    assert state_from_json(state_json([BATCH])) == [BATCH]
    state.save([])
    assert state.load() == [] and not list(tmp_path.rglob("*.tmp"))


def _spoiled(**fields: object) -> dict[str, object]:
    """A state whose one batch has these fields changed."""
    return {**state_json([BATCH]), "batches": [{**BATCH.to_json(), **fields}]}


HOSTILE = {
    "not an object": [],
    "another version": {"version": 2, "batches": []},
    "batch id with a path": _spoiled(id="../../etc/passwd"),
    "custom id too long": _spoiled(requests={"r" * 65: [[KEY, "s"]]}),
    "key not a hash": _spoiled(requests={"r0": [["k", "s"]]}),
    "item not a pair": _spoiled(requests={"r0": [[KEY, "s", "extra"]]}),
    "empty requests": _spoiled(requests={}),
    "model not a string": _spoiled(model=7),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_broken_state_is_refused_with_a_way_out(name: str, tmp_path: Path) -> None:
    with pytest.raises(BadState):
        state_from_json(HOSTILE[name])
    path = tmp_path / "state.json"
    path.write_text(json.dumps(HOSTILE[name]))
    with pytest.raises(InvalidInput, match="move it away to start afresh"):
        StateFile(path).load()


def test_a_state_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\x00\xff{")
    with pytest.raises(InvalidInput, match="cannot be used"):
        StateFile(path).load()
