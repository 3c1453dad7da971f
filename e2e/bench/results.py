"""What one measured move yields, and the median and spread of several."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# The methods in the order the report lists them.
OURS, MANUAL, COLD, FLOOR = "podmigration", "manual recipe", "cold restart", "floor (runc/CRIU)"
METHODS = (OURS, MANUAL, COLD, FLOOR)


@dataclass
class Measurement:
    """One move of one workload. `downtime` is the prober's (seconds without a correct answer); `total` runs from
    the first action of the move to its end (see the report for each method's end); `steps` are the method's own
    durations (the operator's status.durations for ours); `frozen` is CRIU's frozen time of the dump, seconds;
    `leftovers` the checkpoint images and archives the method left on the nodes (the benchmark removes them);
    `trace` the phase transitions and log lines of our migrations (see trace.py)."""

    method: str
    size_mb: int
    pattern: str
    run: int
    downtime: float
    total: float
    steps: dict[str, float] = field(default_factory=dict)
    frozen: float | None = None
    wrong: int = 0
    state_kept: bool = True
    leftovers: int = 0
    trace: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of n values."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def __str__(self) -> str:
        if self.n == 1:
            return f"{self.median:.2f}"
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


def select(results: list[Measurement], method: str, size_mb: int, pattern: str) -> list[Measurement]:
    return [m for m in results if (m.method, m.size_mb, m.pattern) == (method, size_mb, pattern)]


def spread(results: list[Measurement], method: str, size_mb: int, pattern: str, what: str) -> Spread | None:
    """The spread of one attribute (downtime, total, frozen) or step (steps.<name>) over the matching runs."""
    values = []
    for m in select(results, method, size_mb, pattern):
        value = m.steps.get(what[6:]) if what.startswith("steps.") else getattr(m, what)
        if value is not None:
            values.append(value)
    return Spread.of(values) if values else None
