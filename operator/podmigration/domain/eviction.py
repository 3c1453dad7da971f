"""Live migration instead of eviction (KubeVirt's evictionStrategy: LiveMigrate), for pods that opted in.

An eviction (``kubectl drain``, the Eviction API) of an opted-in pod starts a PodMigration and is answered
429 Too Many Requests, which ``kubectl drain`` and other eviction clients retry; once the migration has moved
the pod, the source is gone and the retried eviction finds nothing left to evict. A pod that cannot move (a
refusal, a cancelled eviction-started migration, or MAX_ATTEMPTS of them that failed) is evicted as usual, with an
Event saying why. A failed one is retried first, after a backoff that doubles each time, as KubeVirt retries
evacuation migrations: meanwhile the eviction is answered 429 too. The rules about other pods
(placement.AROUND_REASONS) are not checked here, as reading every pod of the cluster would slow each eviction:
Preparing refuses them, and the retried eviction then goes ahead at once, without a retry of the migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import api
from ..api import phases
from ..api.types import Obj, annotations_of, phase_of, status_of
from .placement import AROUND_REASONS
from .refusals import Refusal
from .status import parse_time, utcnow

#: Pod or namespace label: "migrate" (live-migrate on eviction) or "evict" (as usual). Pod beats namespace,
#: namespace beats the chart's cluster-wide default.
EVICTION_LABEL = f"{api.GROUP}/eviction"
MIGRATE, EVICT = "migrate", "evict"
#: On PodMigrations an eviction started: what asked for them.
REQUESTED_BY_ANNOTATION = f"{api.GROUP}/requested-by"
#: Live migrations an eviction tries (the first and the retries) before it evicts as usual.
MAX_ATTEMPTS = 3
#: Seconds after the first failure before the next attempt; doubled after each further one.
BACKOFF_SECONDS = 10.0
#: Reasons of a migration Preparing refused for want of a node that can take the pod, retried no more.
NO_NODE = frozenset({"NoTargetAvailable", *AROUND_REASONS})


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
    for labels in (
        (pod["metadata"].get("labels") or {}),
        (((namespace or {}).get("metadata") or {}).get("labels") or {}),
    ):
        if labels.get(EVICTION_LABEL) in (MIGRATE, EVICT):
            return labels[EVICTION_LABEL]
    return default


def _of_pod(migrations: list[Obj], pod: Obj) -> list[Obj]:
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    return [
        m for m in migrations if m["spec"].get("podName") == name and status_of(m).get("sourcePodUID") in (None, uid)
    ]


def moved_by_eviction(pod: Obj, migrations: list[Obj], cordoned: set[str]) -> Obj | None:
    """The eviction-started migration whose restore ``pod`` is, when it looks like a retry aimed at the source.

    A StatefulSet pod keeps its name, so a drain retrying the eviction of the moved pod (evictions go by name)
    reaches its restore: that is recognised by the restore running on a node that is not being drained while
    the node it came from is cordoned, and answered "gone" (404), which ends the retries.
    """
    name = annotations_of(pod).get(api.MIGRATION_ANNOTATION)
    migration = next((m for m in migrations if m["metadata"]["name"] == name), None)
    if migration is None or annotations_of(migration).get(REQUESTED_BY_ANNOTATION) != "eviction":
        return None
    source = status_of(migration).get("sourceNode")
    node = (pod.get("spec") or {}).get("nodeName")
    return migration if source in cordoned and node not in cordoned else None


def _ended_at(migration: Obj) -> datetime:
    transitions = status_of(migration).get("phaseTransitions") or []
    return parse_time(transitions[-1]["time"]) if transitions else datetime.min.replace(tzinfo=utcnow().tzinfo)


def _after_failures(ended: list[Obj], now: datetime, refusals: list[Refusal]) -> Decision:
    """The eviction-started migrations of this pod ended (oldest first): retry after the backoff, or evict."""
    last = ended[-1]
    status = last["status"]
    why = (
        f"live migration by PodMigration {last['metadata']['name']} ended {status['phase']} "
        f"({status.get('reason')}: {status.get('message')})"
    )
    if status["phase"] == phases.CANCELLED or len(ended) >= MAX_ATTEMPTS or refusals or status.get("reason") in NO_NODE:
        attempts = f" after {len(ended)} attempts" if len(ended) > 1 else ""
        return Decision(allow=True, event=("EvictedNotMigrated", f"{why}{attempts}; evicted as usual"))
    retry_at = _ended_at(last) + timedelta(seconds=BACKOFF_SECONDS * 2 ** (len(ended) - 1))
    if now < retry_at:
        return Decision(
            allow=False,
            message=f"{why}; live migration attempt {len(ended) + 1} of {MAX_ATTEMPTS} in "
            f"{(retry_at - now).total_seconds():.0f}s: retry the eviction",
        )
    return Decision(
        allow=False,
        start=True,
        message=f"{why}; live migration attempt {len(ended) + 1} of "
        f"{MAX_ATTEMPTS} started instead of the eviction: retry the "
        "eviction until the pod is gone",
    )


def decide(
    pod: Obj, strategy: str, migrations: list[Obj], refusals: list[Refusal], now: datetime | None = None
) -> Decision:
    """What to answer an eviction of ``pod`` (``migrations``: the PodMigrations of its namespace)."""
    if strategy != MIGRATE:
        return Decision(allow=True)
    mine = _of_pod(migrations, pod)
    running = next((m for m in mine if not phases.is_terminal(phase_of(m))), None)
    if running is not None:
        return Decision(
            allow=False,
            message=f"pod is being live-migrated by PodMigration {running['metadata']['name']}"
            " instead of evicted; retry the eviction until the pod is gone",
        )
    ended = [
        m
        for m in mine
        if annotations_of(m).get(REQUESTED_BY_ANNOTATION) == "eviction"
        and status_of(m).get("sourcePodUID") == pod["metadata"]["uid"]
        and phase_of(m) in (phases.FAILED, phases.CANCELLED)
    ]
    if ended:
        return _after_failures(sorted(ended, key=_ended_at), now or utcnow(), refusals)
    if refusals:
        why = "; ".join(f"{r.reason}: {r.message}" for r in refusals)
        return Decision(allow=True, event=("EvictedNotMigrated", f"cannot live-migrate ({why}); evicted as usual"))
    return Decision(
        allow=False,
        start=True,
        message="pod is being live-migrated instead of evicted; retry the eviction until the pod is gone",
    )


def migration_for(pod: Obj) -> Obj:
    """The PodMigration an eviction starts: target picked by the operator (the drained node is cordoned)."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "generateName": f"{pod['metadata']['name'][:50]}-evict-",
            "annotations": {REQUESTED_BY_ANNOTATION: "eviction"},
        },
        "spec": {"podName": pod["metadata"]["name"]},
    }
