"""One worker process: its app (the consumer group), its state, its web views, its place in
the group, and how it retries and logs."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(BaseModel):
    """The worker's part of ``Settings``."""

    app_id: str = Field("ticktide", description="Faust app id = consumer group id")
    data_dir: Path = Field(Path(".ticktide"), description="Table state (RocksDB) directory")
    store: Literal["rocksdb", "memory"] = "rocksdb"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    canonical_url: str | None = Field(
        None, description="URL other workers reach this one's web views at (default: from web_host)")
    worker_id: str = Field(default_factory=_default_worker_id, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$")
    session_timeout_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    heartbeat_period_s: float = Field(5.0, gt=0, description="system.heartbeats period")
    standby_replicas: int = Field(0, ge=0, description="Standby copies of each table partition")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Faust's guarantee for its agents (exactly_once: refused, see the README)")
    extra_agents: str = Field("", pattern=r"^[A-Za-z0-9_.,]*$",
                              description="Modules of your own agents (comma-separated), each with install(app)")
    retry_max_attempts: int = Field(4, ge=1, description="Tries of a transiently failing record in all")
    retry_backoff_s: float = Field(1.0, gt=0, description="Wait before the 2nd try; doubles per try")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
