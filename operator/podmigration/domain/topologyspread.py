"""The pod's topologySpreadConstraints with ``whenUnsatisfiable: DoNotSchedule`` on one node, as the scheduler's
PodTopologySpread filter checks them (ScheduleAnyway ones are preferences and are not checked).

For each constraint the pods of the pod's namespace that its labelSelector (with the pod's values of matchLabelKeys
merged in) selects are counted per domain (value of topologyKey) over the eligible nodes: those that have every
constraint's topologyKey, match the pod's nodeSelector and required node affinity (nodeAffinityPolicy Honor, the
default) and, with nodeTaintsPolicy Honor, whose taints it tolerates. The pod fits a node when its domain's count,
plus the pod itself if it is selected, exceeds the emptiest domain's (0 while there are fewer domains than
minDomains) by at most maxSkew. Terminating pods are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..api.types import Obj
from .refusals import Refusal
from .scheduling import node_affinity_refusals, selector_text, selects, taint_refusals

REASON = "TopologySpreadNotSatisfied"


def hard_constraints(pod: Obj) -> list[Obj]:
    return [
        c
        for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []
        if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
    ]


def _selector(constraint: Obj, labels: Mapping[str, str]) -> Obj | None:
    """labelSelector with ``key In (the pod's value)`` for each of matchLabelKeys the pod has."""
    selector = constraint.get("labelSelector")
    keys = [k for k in constraint.get("matchLabelKeys") or [] if k in labels]
    if selector is None or not keys:
        return selector
    merged = [{"key": k, "operator": "In", "values": [labels[k]]} for k in keys]
    return {**selector, "matchExpressions": list(selector.get("matchExpressions") or []) + merged}


def _eligible(pod: Obj, node: Obj, constraint: Obj, constraints: list[Obj]) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(c["topologyKey"] not in labels for c in constraints):
        return False
    if constraint.get("nodeAffinityPolicy", "Honor") == "Honor" and node_affinity_refusals(pod, node):
        return False
    return not (constraint.get("nodeTaintsPolicy") == "Honor" and taint_refusals(pod, node))


def spread_refusals(pod: Obj, node: Obj, others: Iterable[Obj], nodes: Mapping[str, Obj]) -> list[Refusal]:
    """The DoNotSchedule constraints of ``pod`` that putting it on ``node`` breaks; ``others`` are the pods bound to
    nodes (not the pod itself), ``nodes`` every node by name."""
    constraints = hard_constraints(pod)
    if not constraints:
        return []
    name, here = node["metadata"]["name"], node["metadata"].get("labels") or {}
    own = pod["metadata"].get("labels") or {}
    counted = [
        o
        for o in others
        if o["metadata"].get("namespace") == pod["metadata"].get("namespace")
        and not o["metadata"].get("deletionTimestamp")
    ]
    refusals = []
    for c in constraints:
        key, selector = c["topologyKey"], _selector(c, own)
        eligible = {n: v["metadata"].get("labels") or {} for n, v in nodes.items() if _eligible(pod, v, c, constraints)}
        rule = (
            f"topologySpreadConstraint (topologyKey {key}, maxSkew {c['maxSkew']}, "
            f"labelSelector {selector_text(selector)})"
        )
        if key not in here:
            refusals.append(Refusal(REASON, f"node {name} has no label {key}, the pod's {rule} needs it"))
            continue
        counts = dict.fromkeys((labels[key] for labels in eligible.values()), 0)
        for other in counted:
            labels = eligible.get(other["spec"]["nodeName"])
            if labels is not None and selects(selector, other["metadata"].get("labels") or {}):
                counts[labels[key]] += 1
        fewest = 0 if len(counts) < (c.get("minDomains") or 1) else min(counts.values(), default=0)
        after = counts.get(here[key], 0) + int(selects(selector, own))
        if after - fewest > c["maxSkew"]:
            refusals.append(
                Refusal(
                    REASON,
                    f"node {name} breaks the pod's {rule}: {key}={here[key]} would have {after} of the pods it "
                    f"selects, the emptiest {key} {fewest} (skew {after - fewest})",
                )
            )
    return refusals
