"""What ``kubectl migrate drain`` does with each pod of a node, decided on plain dicts (cluster I/O is drain.py's).

Like ``kubectl drain``, except that a pod the operator's own preflight accepts is live-migrated instead of evicted.
As there, a pod no controller would recreate (no controller ownerReference) is evicted only with ``--force``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..api import phases
from ..api.types import Obj, status_of
from .owners import controller_of
from .owners.refused import MIRROR_ANNOTATION
from .preflight import Plan
from .scheduling import selects

# What the plan says to do with a pod.
MIGRATE, EVICT, SKIP, STAY, BLOCK = "migrate", "evict", "skip", "stay", "block"
# What happened to it, for the summary.
MIGRATED, EVICTED, SKIPPED, FAILED = "migrated", "evicted", "skipped", "failed"

TERMINATED = ("Succeeded", "Failed")
#: Refusals that must not lead to an eviction: the pod is in the middle of another migration.
NEVER_EVICT = frozenset({"AlreadyMigrating"})


@dataclass(frozen=True)
class Decision:
    """One pod and what to do with it: ``why`` is the target of a migration, else the reason for the action;
    ``last``: evict only once no migration waits or runs (the operator's own pods, which run the migrations)."""

    pod: Obj = field(repr=False, compare=False)
    action: str
    why: str
    last: bool = False

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def uid(self) -> str:
        return self.pod["metadata"]["uid"]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    """A row of the summary: the pod, what happened to it (MIGRATED, ...) and the new pod or the reason."""

    ref: str
    action: str
    result: str


def triage(pod: Obj, operator_namespace: str, ignore_daemonsets: bool) -> Decision | None:
    """The pods whose fate does not depend on the preflight; None for a migration candidate."""
    meta = pod["metadata"]
    phase = (pod.get("status") or {}).get("phase")
    if phase in TERMINATED:
        return Decision(pod, SKIP, f"{phase}: nothing runs any more")
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return Decision(pod, SKIP, "static pod: its node's kubelet runs it from a manifest, the API object is a mirror")
    if (controller_of(pod) or {}).get("kind") == "DaemonSet":
        if ignore_daemonsets:
            return Decision(pod, SKIP, "DaemonSet pod (--ignore-daemonsets)")
        return Decision(pod, BLOCK, "DaemonSet pod: its DaemonSet would start it again here (--ignore-daemonsets)")
    if meta["namespace"] == operator_namespace:
        return Decision(pod, EVICT, "the operator's own pod: evicted, never migrated", last=True)
    return None


def unmanaged(pod: Obj) -> bool:
    """Whether nothing would recreate the pod once evicted: it has no controller ownerReference."""
    return controller_of(pod) is None


def decide(pod: Obj, plan: Plan, evict: bool, force: bool = False, delete_emptydir_data: bool = False) -> Decision:
    """A candidate after the preflight: migrate when it passes, else evict (``evict``; an unmanaged pod only with
    ``force``, a pod with emptyDir data, which eviction loses, only with ``delete_emptydir_data``, as ``kubectl
    drain``) or leave it, saying why."""
    if plan.ok:
        return Decision(pod, MIGRATE, f"to {plan.target_node}")
    why = "; ".join(f"{r.reason}: {r.message}" for r in plan.refusals)
    if not evict:
        return Decision(pod, STAY, f"not evicted (--no-evict): {why}")
    if any(r.reason in NEVER_EVICT for r in plan.refusals):
        return Decision(pod, STAY, f"not evicted during another migration: {why}")
    if unmanaged(pod) and not force:
        return Decision(pod, STAY, f"{why}; unmanaged pod: use --force to evict it anyway")
    local = [v["name"] for v in (pod.get("spec") or {}).get("volumes") or [] if "emptyDir" in v]
    if local and not delete_emptydir_data:
        return Decision(
            pod,
            STAY,
            f"{why}; local data in emptyDir {', '.join(local)} would be lost: use "
            "--delete-emptydir-data to evict it anyway",
        )
    return Decision(pod, EVICT, why)


def settled(decision: Decision) -> Outcome:
    """The summary row of a pod the plan neither migrates nor evicts: skipped, or left on the node (failed)."""
    return Outcome(decision.ref, SKIPPED if decision.action == SKIP else FAILED, decision.why)


def _labels(pod: Obj) -> Mapping[str, str]:
    return pod["metadata"].get("labels") or {}


def holding_back(pod: Obj, budgets: Iterable[Obj], in_flight: Iterable[Obj]) -> str | None:
    """The first PodDisruptionBudget selecting ``pod`` that allows no disruption once this drain's unfinished
    migrations of pods it selects are counted (the disruption controller sees them late, if at all: the fence may
    take the selected labels off the source), or None.

    A budget without status counts as allowing none, as the Eviction API does."""
    mine = [p for p in in_flight if p["metadata"]["namespace"] == pod["metadata"]["namespace"]]
    for budget in sorted(budgets, key=lambda b: b["metadata"]["name"]):
        selector = (budget.get("spec") or {}).get("selector")
        if not selects(selector, _labels(pod)):
            continue
        allowed = (budget.get("status") or {}).get("disruptionsAllowed") or 0
        if allowed - sum(selects(selector, _labels(p)) for p in mine) <= 0:
            return budget["metadata"]["name"]
    return None


def migration_timeout(remaining: float) -> int:
    """spec.timeoutSeconds of a migration started with ``remaining`` seconds to the drain's deadline, within the
    CRD's 10..3600: the operator rolls it back by then rather than let it outlive the drain."""
    return max(10, min(3600, int(remaining)))


def migration_outcome(ref: str, migration: Obj) -> Outcome:
    """The summary row of a PodMigration that ended."""
    status = status_of(migration)
    if status.get("phase") == phases.SUCCEEDED:
        return Outcome(ref, MIGRATED, f"{status.get('targetPod')} on {status.get('targetNode')}")
    return Outcome(
        ref,
        FAILED,
        f"PodMigration {migration['metadata']['name']} {str(status.get('phase')).lower()}: "
        f"{status.get('reason')}: {status.get('message')}",
    )


def drained(outcomes: Iterable[Outcome]) -> bool:
    """Whether every pod that had to leave the node left it."""
    return all(o.action in (MIGRATED, EVICTED, SKIPPED) for o in outcomes)


def plan_complete(plan: Iterable[Decision]) -> bool:
    """Whether carrying out the plan would empty the node of every pod that must leave."""
    return all(d.action in (MIGRATE, EVICT, SKIP) for d in plan)
