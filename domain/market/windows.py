"""Event-time windows: tumbling (size = step) and hopping (size > step), in microseconds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_UNITS_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_DURATION = re.compile(r"^([1-9][0-9]*)(ms|s|m|h|d)$")


def parse_duration_us(text: str) -> int:
    """'1s', '5m', '250ms', '1h' -> microseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (examples: 1s, 5m, 250ms, 1h)")
    return int(match[1]) * _UNITS_US[match[2]]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window family: tumbling '1m' or hopping '5m/1m' (5-minute windows every minute)."""

    name: str
    size_us: int
    step_us: int

    def starts_for(self, time_us: int) -> range:
        """Starts of every window of this family that contains ``time_us``."""
        last = time_us - time_us % self.step_us
        return range(last, time_us - self.size_us, -self.step_us)


def parse_window(text: str) -> WindowSpec:
    """'1m' (tumbling) or '5m/1m' (hopping: size/step)."""
    size_text, _, step_text = text.strip().partition("/")
    size = parse_duration_us(size_text)
    step = parse_duration_us(step_text) if step_text else size
    if step > size or size % step:
        raise ValueError(f"window {text!r}: the step must divide the size")
    return WindowSpec(text.strip(), size, step)


def parse_windows(text: str) -> tuple[WindowSpec, ...]:
    """A comma-separated set of windows, e.g. '1s,1m,5m,5m/1m'."""
    specs = tuple(parse_window(part) for part in text.split(",") if part.strip())
    if not specs:
        raise ValueError("at least one window is needed")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"duplicate window in {text!r}")
    return specs


DEFAULT_WINDOWS = "1s,1m,5m,5m/1m"


def chosen_intervals(asked: str, specs: Sequence[WindowSpec], required: Iterable[str]) -> frozenset[str]:
    """The window names listed in ``asked`` (comma-separated), or every window's if it lists
    none; ValueError for a name no window has, or a list that leaves out one ``required``."""
    windows = frozenset(spec.name for spec in specs)
    chosen = frozenset(name.strip() for name in asked.split(",") if name.strip())
    if not chosen:
        return windows
    if chosen - windows:
        unknown, known = ", ".join(sorted(chosen - windows)), ", ".join(sorted(windows))
        raise ValueError(f"{unknown} is not one of the windows ({known})")
    if missing := set(required) - chosen:
        raise ValueError(f"must include {', '.join(sorted(missing))} (what the strategy and the enrichment read)")
    return chosen
