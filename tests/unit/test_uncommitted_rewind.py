"""Which partitions the seek before streams resume moves to their beginning: those without a
committed offset (or at 0, which aiokafka's seek skips too), never a table's changelog
(recovery positions those); the worker installs it (the real broker: tests/integration/
test_uncommitted_rewind.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import Consumer

from streams.faust.patches.lifecycle import _seek_to_committed_or_beginning
from streams.settings import load_settings
from streams.worker import build_worker

COMMITTED = {TopicPartition("analysis.anomalies", 0): None, TopicPartition("analysis.anomalies", 1): 0,
             TopicPartition("analysis.anomalies", 2): 7, TopicPartition("app-candles-changelog", 0): None}


class FakeThread:
    def __init__(self) -> None:
        self.rewound: list[TopicPartition] = []

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        return dict(COMMITTED)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        assert offset == 0, "the beginning (aiokafka resets an offset below the log start to the earliest)"
        self.rewound.append(partition)


class FakeConsumer:
    def __init__(self) -> None:
        self._thread = FakeThread()

    def _is_changelog_tp(self, tp: Any) -> bool:
        return str(tp.topic).endswith("-changelog")


def test_partitions_nobody_committed_are_rewound_and_changelogs_left_alone() -> None:
    consumer = FakeConsumer()
    committed = asyncio.run(_seek_to_committed_or_beginning(consumer))
    assert committed == COMMITTED  # what Faust's perform_seek records as read and committed offsets
    assert consumer._thread.rewound == [TopicPartition("analysis.anomalies", 0),
                                        TopicPartition("analysis.anomalies", 1)]


def test_the_worker_seeks_with_the_rewind(tmp_path: Path) -> None:
    build_worker(load_settings(data_dir=tmp_path))
    assert Consumer.seek_to_committed is _seek_to_committed_or_beginning
