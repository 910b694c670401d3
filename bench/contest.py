"""The ground every pipeline contender shares: the topic, the symbol names, the decoder,
memory and load readings."""

from __future__ import annotations

import os
from pathlib import Path

from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import registry_for
from streams.settings import Settings

TOPIC = "market.trades"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


def symbol_names(count: int) -> list[str]:
    """The first ``count`` known symbols, then made-up ones (SYM0USDT, ...)."""
    return [*SYMBOLS, *(f"SYM{n}USDT" for n in range(count))][:count]


def _status_mb(pid: int | str, field: str) -> float | None:
    """A ``/proc/PID/status`` field given in kB, as MB; None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size (VmHWM) of a process in MB; None if it cannot be read."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident set size (VmRSS) of a process in MB; None if it cannot be read."""
    return _status_mb(pid, "VmRSS")


def load_note() -> str:
    """The 1-minute load average against the CPU count: how shared the box was."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def worker_decoder(settings: Settings, partitions: int) -> TickDecoder:
    """The hot-path decoder as a ticktide worker builds it, checking each trade's partition."""
    decoder = TickDecoder(AvroCodec(registry_for(settings), settings.max_record_bytes))
    decoder.partitions = partitions
    return decoder
