"""Live migration instead of eviction (KubeVirt's evictionStrategy: LiveMigrate), for pods that opted in.

An eviction (``kubectl drain``, the Eviction API) of an opted-in pod starts a PodMigration and is answered
429 Too Many Requests, which ``kubectl drain`` and other eviction clients retry; once the migration has moved
the pod, the source is gone and the retried eviction finds nothing left to evict. A pod that cannot move (a
refusal, or an eviction-started migration of it that failed) is evicted as usual, with an Event saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import api, phases
from .refusals import Refusal

Obj = dict[str, Any]

#: Pod or namespace label: "migrate" (live-migrate on eviction) or "evict" (as usual). Pod beats namespace,
#: namespace beats the chart's cluster-wide default.
EVICTION_LABEL = f"{api.GROUP}/eviction"
MIGRATE, EVICT = "migrate", "evict"
#: On PodMigrations an eviction started: what asked for them.
REQUESTED_BY_ANNOTATION = f"{api.GROUP}/requested-by"


@dataclass(frozen=True)
class Decision:
    """``allow``: evict as usual; else answer ``code`` (429: retry) with ``message``. ``start``: create the
    PodMigration first. ``event``: (reason, message) for an Event on the pod."""

    allow: bool
    message: str = ""
    start: bool = False
    event: tuple[str, str] | None = None
    code: int = 429


def wanted(pod: Obj, namespace: Obj | None, default: str) -> str:
    """The pod's eviction strategy: its own label, else its namespace's, else the cluster default."""
    for labels in ((pod["metadata"].get("labels") or {}), (((namespace or {}).get("metadata") or {}).get("labels")
                                                             or {})):
        if labels.get(EVICTION_LABEL) in (MIGRATE, EVICT):
            return labels[EVICTION_LABEL]
    return default


def _of_pod(migrations: list[Obj], pod: Obj) -> list[Obj]:
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    return [m for m in migrations if m["spec"].get("podName") == name
            and (m.get("status") or {}).get("sourcePodUID") in (None, uid)]


def moved_by_eviction(pod: Obj, migrations: list[Obj], cordoned: set[str]) -> Obj | None:
    """The eviction-started migration whose restore ``pod`` is, when it looks like a retry aimed at the source.

    A StatefulSet pod keeps its name, so a drain retrying the eviction of the moved pod (evictions go by name)
    reaches its restore: that is recognised by the restore running on a node that is not being drained while
    the node it came from is cordoned, and answered "gone" (404), which ends the retries.
    """
    name = (pod["metadata"].get("annotations") or {}).get(api.MIGRATION_ANNOTATION)
    migration = next((m for m in migrations if m["metadata"]["name"] == name), None)
    if migration is None or (migration["metadata"].get("annotations") or {}).get(REQUESTED_BY_ANNOTATION) != "eviction":
        return None
    source = (migration.get("status") or {}).get("sourceNode")
    node = (pod.get("spec") or {}).get("nodeName")
    return migration if source in cordoned and node not in cordoned else None


def decide(pod: Obj, strategy: str, migrations: list[Obj], refusals: list[Refusal]) -> Decision:
    """What to answer an eviction of ``pod`` (``migrations``: the PodMigrations of its namespace)."""
    if strategy != MIGRATE:
        return Decision(allow=True)
    mine = _of_pod(migrations, pod)
    running = next((m for m in mine if not phases.is_terminal((m.get("status") or {}).get("phase"))), None)
    if running is not None:
        return Decision(allow=False, message=f"pod is being live-migrated by PodMigration {running['metadata']['name']}"
                                             " instead of evicted; retry the eviction until the pod is gone")
    failed = next((m for m in mine if (m["metadata"].get("annotations") or {}).get(REQUESTED_BY_ANNOTATION) == "eviction"
                   and (m.get("status") or {}).get("sourcePodUID") == pod["metadata"]["uid"]
                   and (m.get("status") or {}).get("phase") in (phases.FAILED, phases.CANCELLED)), None)
    if failed is not None:
        status = failed["status"]
        return Decision(allow=True, event=("EvictedNotMigrated", f"live migration by PodMigration "
                                           f"{failed['metadata']['name']} ended {status['phase']} ({status.get('reason')}:"
                                           f" {status.get('message')}); evicted as usual"))
    if refusals:
        why = "; ".join(f"{r.reason}: {r.message}" for r in refusals)
        return Decision(allow=True, event=("EvictedNotMigrated", f"cannot live-migrate ({why}); evicted as usual"))
    return Decision(allow=False, start=True, message="pod is being live-migrated instead of evicted; retry the "
                                                     "eviction until the pod is gone")


def migration_for(pod: Obj) -> Obj:
    """The PodMigration an eviction starts: target picked by the operator (the drained node is cordoned)."""
    return {"apiVersion": api.API_VERSION, "kind": api.KIND,
            "metadata": {"generateName": f"{pod['metadata']['name'][:50]}-evict-",
                         "annotations": {REQUESTED_BY_ANNOTATION: "eviction"}},
            "spec": {"podName": pod["metadata"]["name"]}}
