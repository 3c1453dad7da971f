"""Where one migration's seconds went, finer than status.durations: its phase transitions as offsets from the
start, and what the operator and the node-helpers logged about it (their lines naming the migration, copied as
they are but for the time, which becomes an offset: the log format belongs to those components and changes with
them)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import e2elib as lib
from kubernetes.client.rest import ApiException

from .cluster import Cluster

LOG_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+)")
SELECTORS = ("app.kubernetes.io/name=podmigration-operator", "app.kubernetes.io/name=podmigration-node-helper")


def stamp(text: str) -> float:
    """An RFC 3339 time of the API (phaseTransitions) as seconds since the epoch, like time.time()."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def collect(cluster: Cluster, name: str, uid: str, status: dict, start: float) -> list[str]:
    """The trace of PodMigration `name` (uid `uid`, shown as <uid>) that began at `start`, one timeline: each line
    starts with its offset from `start` (log times are read as UTC, as the components log them); read before
    anything restarts the components whose logs it copies."""
    events = [(stamp(t["time"]) - start, f"phase {t['phase']}") for t in status.get("phaseTransitions", [])]
    since = int(time.time() - start) + 5
    for selector in SELECTORS:
        for pod in cluster.core.list_namespaced_pod(lib.OPERATOR_NAMESPACE, label_selector=selector).items:
            try:
                log = cluster.core.read_namespaced_pod_log(
                    pod.metadata.name, lib.OPERATOR_NAMESPACE, since_seconds=since
                )
            except ApiException:
                continue  # a pod restarting right now: its lines are lost for this trace
            for line in log.splitlines():
                if name in line or uid in line:
                    events.append(_event(pod.spec.node_name, line.replace(uid, "<uid>"), start))
    return [f"{'+' if at >= 0 else ''}{at:7.2f} s  {text}" for at, text in sorted(events)]


def _event(node: str, line: str, start: float) -> tuple[float, str]:
    found = LOG_TIME.search(line)
    if not found:
        return float("inf"), f"{node}: {line[:300]}"
    at = datetime.strptime(found.group(1).replace(",", "."), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    rest = f"{line[: found.start()].rstrip('[ ')} {line[found.end() :].lstrip('] ')}".strip()
    return at.timestamp() - start, f"{node}: {rest[:300]}"
