"""Fixtures for every test; the helpers behind them live in tests/harness.py."""

from tests.harness import broker, isolated_broker, stack_settings, worker

__all__ = ["broker", "isolated_broker", "stack_settings", "worker"]
