"""Several migrations at once from the source node to the target, against one alone, under the operator's
per-node limit as installed (2 by default: the others wait their turn) and raised for this part."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

from . import ours
from .cluster import OPERATOR, Cluster, kubectl
from .results import Measurement
from .workload import Workload, serving

LIMIT_ENV = "PM_MAX_OUTBOUND_PER_NODE"


def measure(cluster: Cluster, workload: Workload, count: int, run: int, label: str) -> list[Measurement]:
    """`count` counters on the source, each behind its Service, migrated by PodMigrations created together."""
    with contextlib.ExitStack() as stack:
        servings = [stack.enter_context(serving(cluster, f"pmb-par-{count}-{run}-{i}", workload)) for i in range(count)]
        return ours.migrate_at_once(cluster, workload, run, servings, method=label)


def set_limit(value: str) -> None:
    """The command the report quotes, then waits until the restarted operator is ready."""
    kubectl("set", "env", OPERATOR, f"{LIMIT_ENV}={value}")
    kubectl("rollout", "status", OPERATOR, "--timeout=150s")


def current_limit() -> str:
    path = f'{{.spec.template.spec.containers[0].env[?(@.name=="{LIMIT_ENV}")].value}}'
    return kubectl("get", OPERATOR, "-o", f"jsonpath={path}").strip() or "2"


@contextlib.contextmanager
def outbound_limit(value: int) -> Iterator[None]:
    """The operator's per-node limit set to `value` inside, and put back as it was afterwards."""
    before = current_limit()
    set_limit(str(value))
    try:
        yield
    finally:
        try:
            set_limit(before)
        except subprocess.SubprocessError as exc:  # a cluster recreated meanwhile has the chart's value anyway
            print(f"  could not put {LIMIT_ENV}={before} back: {exc}", flush=True)
