"""A lean Faust monitor: Faust's default one does bookkeeping for every message and
stream event (dicts, deques, timers), a measurable share of the per-event cost at market
data rates. This one stamps the arrival time (for our latency metric) and skips the rest
of the per-event work; rebalance, commit and web statistics are kept."""

from __future__ import annotations

from typing import Any

from faust.sensors.monitor import Monitor


class LeanMonitor(Monitor):
    """Faust's Monitor without per-event statistics."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        message.time_in = self.time()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None
