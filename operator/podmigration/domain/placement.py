"""Which nodes a pod may move to, and which one to pick when the user did not say.

The replacement is bound with ``nodeName`` and never goes through the scheduler: its checkpoint archives are shipped
to one node before it exists and it must restore exactly there, while the source stays frozen until it runs; a
pod left to the scheduler could be placed elsewhere or stay Pending. So what the scheduler's filters would check is
checked here, before anything changes: the node on its own (scheduling.py), the pods around it (podaffinity.py,
topologyspread.py) and the room left on it (resources.py), all as if the source were already gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..api.types import Obj
from . import podaffinity, resources, topologyspread
from .refusals import Refusal
from .scheduling import node_ready, placement_refusals

#: Pods that hold nothing on a node any more (the scheduler does not see them either).
FINISHED = ("Succeeded", "Failed")

#: The refusals that depend on the pods around the target, which come and go: found only where those pods are read
#: (Preparing, the CLI), never at admission.
AROUND_REASONS = frozenset({podaffinity.REASON, topologyspread.REASON, resources.REASON})


@dataclass(frozen=True)
class Around:
    """The pods the rules about other pods look at, as the caller could read them, and the namespaces' labels
    (needed only when a required inter-pod term selects namespaces by label).

    ``only_namespace``: only that namespace's pods could be read (a user without ``list`` on pods in all
    namespaces); a rule that reaches pods elsewhere is then left unchecked rather than guessed at, and the operator
    checks it in Preparing."""

    pods: Sequence[Obj]
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    only_namespace: str | None = None


@dataclass(frozen=True)
class Cluster:
    """The cluster as the scheduler would see it for the pod's replacement: every node by name, and the pods bound to
    them but finished ones and the pod itself, which leaves when its replacement runs (unless ``keep_source``: the
    replacement is then a copy beside it). ``around`` is None when the pods were not read (the admission webhooks,
    which must answer fast): the rules about other pods are then not checked."""

    nodes: Mapping[str, Obj]
    around: Around | None

    @classmethod
    def of(cls, pod: Obj, nodes: Iterable[Obj], around: Around | None, keep_source: bool = False) -> Cluster:
        by_name = {n["metadata"]["name"]: n for n in nodes}
        if around is None:
            return cls(by_name, None)
        uid = None if keep_source else pod["metadata"].get("uid")
        others = [
            p
            for p in around.pods
            if (p.get("spec") or {}).get("nodeName") in by_name
            and p["metadata"].get("uid") != uid
            and (p.get("status") or {}).get("phase") not in FINISHED
        ]
        return cls(by_name, replace(around, pods=others))

    def on(self, node: str) -> list[Obj]:
        return [p for p in self.around.pods if p["spec"]["nodeName"] == node] if self.around else []


def target_refusals(
    pod: Obj, node: Obj, source_node: str | None, helpers: Mapping[str, bool], cluster: Cluster
) -> list[Refusal]:
    """Everything that keeps ``node`` from receiving ``pod``.

    ``helpers`` maps node name to whether its node-helper pod is Ready (absent: no helper there).
    """
    name = node["metadata"]["name"]
    refusals: list[Refusal] = []
    if name == source_node:
        refusals.append(Refusal("SameNode", f"target node {name} is the node the pod already runs on"))
    if not node_ready(node):
        refusals.append(Refusal("TargetNotReady", f"target node {name} is not Ready"))
    if (node.get("spec") or {}).get("unschedulable"):
        refusals.append(Refusal("TargetUnschedulable", f"target node {name} is unschedulable (cordoned)"))
    if name not in helpers:
        refusals.append(Refusal("TargetNoHelper", f"target node {name} has no podmigration node-helper"))
    elif not helpers[name]:
        refusals.append(Refusal("TargetNoHelper", f"the podmigration node-helper on target node {name} is not ready"))
    refusals.extend(placement_refusals(pod, node))
    around = cluster.around
    if around is not None:
        node_labels = {n: v["metadata"].get("labels") or {} for n, v in cluster.nodes.items()}
        refusals.extend(
            podaffinity.affinity_refusals(
                pod, node, around.pods, node_labels, around.namespace_labels, around.only_namespace
            )
        )
        refusals.extend(topologyspread.spread_refusals(pod, node, around.pods, cluster.nodes))
        refusals.extend(resources.fit_refusals(pod, node, cluster.on(name)))
    return refusals


def choose_target(
    pod: Obj, cluster: Cluster, source_node: str | None, helpers: Mapping[str, bool]
) -> tuple[str | None, dict[str, list[Refusal]]]:
    """Pick the least loaded node that can take the pod (resources.load; ties by name, so the choice is
    deterministic), so that automatic migrations spread instead of all landing on the first node by name.

    Returns the choice (``None`` if no node fits) and the refusals of every rejected node.
    """
    rejected: dict[str, list[Refusal]] = {}
    fitting: list[tuple[float, str]] = []
    for name, node in sorted(cluster.nodes.items()):
        refusals = target_refusals(pod, node, source_node, helpers, cluster)
        if refusals:
            rejected[name] = refusals
        else:
            fitting.append((resources.load(pod, node, cluster.on(name)), name))
    return (min(fitting)[1] if fitting else None), rejected
