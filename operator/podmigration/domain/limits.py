"""How many migrations may run at once (per source node, per namespace, in the cluster), who gets a freed slot, and
how long one may wait for it.

A migration holds its slot from Preparing until it ends (a rollback included): the source node's disk, CPU and
network and the cluster's bandwidth are what the limits protect. The per-node and per-cluster defaults are
KubeVirt's (parallelOutboundMigrationsPerNode 2, parallelMigrationsPerCluster 5). Slots go round robin across
namespaces (the oldest waiting migration of the namespace with the fewest running), so one namespace's long queue
never starves another's; a migration blocked only by its own node or namespace does not hold back the others.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from ..api import phases
from ..api.types import Obj, phase_of, status_of

#: Taken around "count the running migrations, then start this one": every migration of this operator process
#: checks and writes under it, so two of them never both take the last slot.
START_LOCK = threading.Lock()

#: The reason a migration is refused for a full namespace queue: at admission (the webhook's message starts with it)
#: and in Pending.
QUEUE_FULL = "QueueFull"

#: How often a queued migration at the head of the queue looks for a slot; each one further back looks less often
#: (up to QUEUED_POLL_MAX_SECONDS), so a long queue costs the API server little.
QUEUED_POLL_SECONDS = 1.0
QUEUED_POLL_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """Migrations that may run at once: out of one source node, in one namespace, in the whole cluster."""

    per_node: int
    per_namespace: int
    per_cluster: int


@dataclass(frozen=True)
class Queued:
    """Why a migration waits, and how many go before it."""

    message: str
    ahead: int

    @property
    def poll_seconds(self) -> float:
        return min(QUEUED_POLL_MAX_SECONDS, QUEUED_POLL_SECONDS + self.ahead / 5)


def _running(migration: Obj) -> bool:
    phase = phase_of(migration)
    return phase not in (None, phases.PENDING) and not phases.is_terminal(phase)


def _waiting(migration: Obj) -> bool:
    return phase_of(migration) in (None, phases.PENDING)


def _key(migration: Obj) -> tuple[str, str, str]:
    meta = migration["metadata"]
    return meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta["name"]


def _namespace(migration: Obj) -> str:
    return migration["metadata"].get("namespace") or ""


def fair_order(waiting: list[Obj], running: list[Obj]) -> list[Obj]:
    """The waiting migrations in the order they get slots: each next one is the oldest of the namespace with the
    fewest migrations running or ordered before it (the oldest such namespace first on a tie)."""
    counts = Counter(_namespace(m) for m in running)
    left = sorted(waiting, key=_key)
    order: list[Obj] = []
    while left:
        pick = min(left, key=lambda m: (counts[_namespace(m)], _key(m)))
        counts[_namespace(pick)] += 1
        order.append(pick)
        left.remove(pick)
    return order


def why_waiting(me: Obj, source_node: str | None, migrations: list[Obj], limits: Limits) -> Queued | None:
    """None when ``me`` may start now; else why it waits.

    The free cluster slots go in fair order to the waiting migrations their node and namespace leave room for;
    ``me`` starts if it is among them.
    """
    mine, namespace = _key(me), _namespace(me)
    running = [m for m in migrations if _running(m)]
    order = fair_order([m for m in migrations if _waiting(m) and _key(m) != mine] + [me], running)
    on_namespace = Counter(_namespace(m) for m in running)
    on_node = Counter(status_of(m).get("sourceNode") for m in running)
    free = limits.per_cluster - len(running)
    for migration in order:
        if free <= 0:
            break
        node = source_node if migration is me else status_of(migration).get("sourceNode")
        if on_namespace[_namespace(migration)] >= limits.per_namespace or (node and on_node[node] >= limits.per_node):
            continue
        if migration is me:
            return None
        free -= 1
        on_namespace[_namespace(migration)] += 1
        on_node[node] += 1
    ahead = order.index(me)
    if on_namespace[namespace] >= limits.per_namespace:
        running_here = sum(_namespace(m) == namespace for m in running)
        waiting_here = sum(_namespace(m) == namespace for m in order[:ahead])
        return Queued(
            f"waiting for a free slot in namespace {namespace}: {running_here} migration(s) of it run (limit "
            f"{limits.per_namespace} per namespace), {waiting_here} waiting ahead of this one",
            waiting_here,
        )
    if source_node and on_node[source_node] >= limits.per_node:
        out_of_node = sum(status_of(m).get("sourceNode") == source_node for m in running)
        waiting_on_node = sum(status_of(m).get("sourceNode") == source_node for m in order[:ahead])
        return Queued(
            f"waiting for a free slot on node {source_node}: {out_of_node} migration(s) out of it run "
            f"(limit {limits.per_node} per node), {waiting_on_node} waiting ahead of this one",
            waiting_on_node,
        )
    return Queued(
        f"waiting for a free slot: {len(running)} migration(s) run in the cluster (limit {limits.per_cluster}), "
        f"{ahead} waiting ahead of this one",
        ahead,
    )


def queue_full(me: Obj | None, namespace: str, migrations: list[Obj], limit: int) -> str | None:
    """Why a migration is refused: its namespace already has ``limit`` waiting before it (``me`` None: one not yet
    created, at admission). None when there is room."""
    before = [
        m for m in migrations if _waiting(m) and _namespace(m) == namespace and (me is None or _key(m) < _key(me))
    ]
    if len(before) < limit:
        return None
    return (
        f"namespace {namespace} already has {len(before)} PodMigration(s) waiting for a slot (limit {limit} per "
        "namespace, operator.limits.maxQueuedPerNamespace); try again later"
    )


def queue_timeout(waited: float, timeout: int, queued: Queued) -> str | None:
    """Why a migration that waited ``waited`` seconds in Pending gives up, once that is past ``timeout``."""
    if waited < timeout:
        return None
    return f"waited {waited:.0f}s in the queue (queueTimeoutSeconds {timeout}) without a slot; {queued.message}"
