"""Where one migration's seconds went, finer than status.durations: its phase transitions as offsets from the
start, and what the operator and the node-helpers logged about it (their lines naming the migration, copied as
they are: the log format belongs to those components and changes with them)."""

from __future__ import annotations

import time
from datetime import datetime

import e2elib as lib
from kubernetes.client.rest import ApiException

from .cluster import Cluster

SELECTORS = ("app.kubernetes.io/name=podmigration-operator", "app.kubernetes.io/name=podmigration-node-helper")


def stamp(text: str) -> float:
    """An RFC 3339 time of the API (phaseTransitions) as seconds since the epoch, like time.time()."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def collect(cluster: Cluster, name: str, uid: str, status: dict, start: float) -> list[str]:
    """The trace of PodMigration `name` (uid `uid`) that began at `start`; read before anything restarts the
    components whose logs it copies."""
    lines = [f"+{stamp(t['time']) - start:7.2f} s  {t['phase']}" for t in status.get("phaseTransitions", [])]
    since = int(time.time() - start) + 5
    for selector in SELECTORS:
        for pod in cluster.core.list_namespaced_pod(lib.OPERATOR_NAMESPACE, label_selector=selector).items:
            try:
                log = cluster.core.read_namespaced_pod_log(pod.metadata.name, lib.OPERATOR_NAMESPACE,
                                                           since_seconds=since)
            except ApiException:
                continue  # a pod restarting right now: its lines are lost for this trace
            where = pod.spec.node_name
            lines += [f"{where}: {line[:300]}" for line in log.splitlines() if name in line or uid in line]
    return lines
