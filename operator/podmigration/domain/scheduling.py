"""Which nodes a pod may move to, and which one to pick when the user did not say.

The replacement pod is bound with ``nodeName``, bypassing the scheduler, so the checks the scheduler
would do (readiness, cordon, nodeSelector, required node affinity, taints) are done here instead;
the kubelet would otherwise reject or evict the pod after the source was already frozen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from ..api.types import Obj
from .refusals import Refusal

#: Taint effects that keep a pod off a node; PreferNoSchedule is only a preference.
BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def expression_matches(expr: Obj, values_of: Mapping[str, str]) -> bool:
    key, op, values = cast(str, expr.get("key")), expr.get("operator"), expr.get("values") or []
    present = key in values_of
    value = values_of.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            left, right = int(values_of[key]), int(values[0])
        except ValueError:
            return False
        return left > right if op == "Gt" else left < right
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    """A nodeSelectorTerm: all expressions must hold (an empty term matches nothing, as in Kubernetes)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    label_exprs = term.get("matchExpressions") or []
    field_exprs = term.get("matchFields") or []
    if not label_exprs and not field_exprs:
        return False
    return all(expression_matches(e, labels) for e in label_exprs) and all(
        expression_matches(e, fields) for e in field_exprs
    )


def node_selector_matches(selector: Obj, node: Obj) -> bool:
    """A NodeSelector (required node affinity of a pod or a PersistentVolume): any of its terms matches."""
    return any(_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration.get("key") == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def placement_refusals(pod: Obj, node: Obj) -> list[Refusal]:
    """Constraints of the pod that ``node`` violates: nodeSelector, required node affinity, taints."""
    name = node["metadata"]["name"]
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    refusals = [
        Refusal("TargetIncompatible", f"node {name} does not match the pod's nodeSelector {key}={value}")
        for key, value in sorted((spec.get("nodeSelector") or {}).items())
        if labels.get(key) != value
    ]
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is not None and not node_selector_matches(required, node):
        refusals.append(Refusal("TargetIncompatible", f"node {name} does not satisfy the pod's required node affinity"))
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in BLOCKING_EFFECTS and not any(_tolerates(t, taint) for t in tolerations):
            shown = taint["key"] + (f"={taint['value']}" if taint.get("value") else "") + f":{taint['effect']}"
            refusals.append(
                Refusal("TargetIncompatible", f"node {name} has taint {shown} that the pod does not tolerate")
            )
    return refusals


def target_refusals(pod: Obj, node: Obj, source_node: str | None, helpers: Mapping[str, bool]) -> list[Refusal]:
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
    return refusals


def choose_target(
    pod: Obj, nodes: Iterable[Obj], source_node: str | None, helpers: Mapping[str, bool]
) -> tuple[str | None, dict[str, list[Refusal]]]:
    """Pick the first eligible node by name (deterministic, so a retried step picks the same node).

    Returns the choice (``None`` if no node fits) and the refusals of every rejected node.
    """
    rejected: dict[str, list[Refusal]] = {}
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        refusals = target_refusals(pod, node, source_node, helpers)
        if not refusals:
            return node["metadata"]["name"], rejected
        rejected[node["metadata"]["name"]] = refusals
    return None, rejected
