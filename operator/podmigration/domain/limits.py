"""How many migrations may run at once, per source node (outbound) and in the whole cluster, first come first served.

A migration holds its slot from Preparing until it ends (a rollback included): the source node's disk, CPU and
network and the cluster's bandwidth are what the limits protect. The defaults are KubeVirt's
(parallelOutboundMigrationsPerNode 2, parallelMigrationsPerCluster 5).
"""

from __future__ import annotations

import threading

from ..api import phases
from ..api.types import Obj, phase_of, status_of

#: Taken around "count the running migrations, then start this one": every migration daemon of this operator
#: process checks and writes under it, so two of them never both take the last slot.
START_LOCK = threading.Lock()


def _running(migration: Obj) -> bool:
    phase = phase_of(migration)
    return phase not in (None, phases.PENDING) and not phases.is_terminal(phase)


def _waiting(migration: Obj) -> bool:
    return phase_of(migration) in (None, phases.PENDING)


def _key(migration: Obj) -> tuple[str, str, str]:
    meta = migration["metadata"]
    return meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta["name"]


def why_waiting(me: Obj, source_node: str | None, migrations: list[Obj], per_node: int, per_cluster: int) -> str | None:
    """None when ``me`` may start now; else why it waits.

    Older waiting migrations go first: ``me`` starts only if the free slots outnumber those ahead of it.
    """
    mine = _key(me)
    running = [m for m in migrations if _running(m)]
    ahead = [m for m in migrations if _waiting(m) and _key(m) < mine]
    free = per_cluster - len(running)
    if len(ahead) >= free:
        return (
            f"waiting for a free slot: {len(running)} migration(s) run in the cluster (limit {per_cluster}), "
            f"{len(ahead)} waiting ahead of this one"
        )
    if source_node:
        on_node = [m for m in running if status_of(m).get("sourceNode") == source_node]
        ahead_on_node = [m for m in ahead if status_of(m).get("sourceNode") == source_node]
        if len(ahead_on_node) >= per_node - len(on_node):
            return (
                f"waiting for a free slot on node {source_node}: {len(on_node)} migration(s) out of it run "
                f"(limit {per_node} per node), {len(ahead_on_node)} waiting ahead of this one"
            )
    return None
