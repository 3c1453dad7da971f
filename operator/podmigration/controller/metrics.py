"""Prometheus metrics of the operator (prometheus_client, served on the container port named `metrics`).

Counted where the state changes: a phase transition (Run.transition) observes the phase that ended and,
at a terminal phase, the result, the downtime and the bytes moved; every read of a migration by its daemon says
what phase it is in, so the in-flight and queued gauges are what this process drives now (a paused replica, whose
daemons stop, reports none). The names and labels are documented in the README's Metrics table."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..api import phases
from ..api.types import Obj
from ..domain.status import phase_times

#: Buckets in seconds: a migration's downtime and phases run from a fraction of a second to many minutes.
BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
QUEUED = "Queued"


class InFlight(Collector):
    """podmigration_migrations_in_flight{phase} and podmigration_migrations_queued: the migrations this process
    drives, as their daemons last read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[str, bool]] = {}

    def track(self, namespace: str, name: str, status: Obj) -> None:
        phase = status.get("phase") or phases.PENDING
        with self._lock:
            if phases.is_terminal(phase):
                self._seen.pop((namespace, name), None)
            else:
                self._seen[(namespace, name)] = (phase, status.get("reason") == QUEUED)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            seen = list(self._seen.values())
        running = GaugeMetricFamily(
            "podmigration_migrations_in_flight",
            "Unfinished migrations this operator drives, by phase (queued ones included)",
            labels=["phase"],
        )
        by_phase = Tally(phase for phase, _ in seen)
        for phase in phases.FORWARD[:-1]:
            running.add_metric([phase], by_phase.get(phase, 0))
        yield running
        queued = GaugeMetricFamily(
            "podmigration_migrations_queued",
            "Migrations waiting in Pending (reason Queued) behind the operator's limits",
        )
        queued.add_metric([], sum(1 for _, waiting in seen if waiting))
        yield queued


class Metrics:
    """The operator's metrics, in one registry (tests make their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.started = Counter(
            "podmigration_migrations_started", "Migrations that began to run (left Pending)", registry=registry
        )
        self.finished = Counter(
            "podmigration_migrations_finished",
            "Migrations that ended, by result (the terminal phase) and reason",
            ["result", "reason"],
            registry=registry,
        )
        self.downtime = Histogram(
            "podmigration_downtime_seconds",
            "Time the workload was not serving (from the "
            "source's freeze to the replacement's readiness), per successful migration",
            buckets=BUCKETS,
            registry=registry,
        )
        self.phase_seconds = Histogram(
            "podmigration_phase_duration_seconds",
            "Time spent in each phase",
            ["phase"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.checkpointed = Counter(
            "podmigration_checkpoint_bytes",
            "Bytes of checkpoint archives written, by finished migrations",
            registry=registry,
        )
        self.transferred = Counter(
            "podmigration_transferred_bytes",
            "Bytes sent from source to target node, by finished migrations",
            registry=registry,
        )
        self.in_flight = InFlight()
        registry.register(self.in_flight)

    def transition(self, status: Obj, previous: str | None) -> None:
        """After a phase change was written: `status` is the new one, `previous` the phase that ended."""
        phase = status.get("phase")
        times = phase_times(status)
        if previous in times and phase in times:
            self.phase_seconds.labels(previous).observe(max(0.0, (times[phase] - times[previous]).total_seconds()))
        if phase == phases.PREPARING:
            self.started.inc()
        if not phases.is_terminal(phase):
            return
        self.finished.labels(phase, status.get("reason") or phase).inc()
        downtime = (status.get("durations") or {}).get("downtime")
        if phase == phases.SUCCEEDED and downtime is not None:
            self.downtime.observe(downtime)
        self.checkpointed.inc(status.get("checkpointBytes") or 0)
        self.transferred.inc(status.get("transferredBytes") or 0)


#: The process's metrics; every run (context.Run) reports to it.
METRICS = Metrics()


def serve(port: int) -> None:
    """Serve /metrics on `port` (0: not at all) from a thread of prometheus_client's."""
    if port:
        start_http_server(port)
