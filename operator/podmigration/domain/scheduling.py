"""What a node must be for a pod, on its own: Ready, nodeSelector, required node affinity, taints; and the label
selector matching that the placement rules share (placement.py puts them together).

The replacement pod is bound with ``nodeName``, bypassing the scheduler, so the checks the scheduler
would do are done here instead; the kubelet would otherwise reject or evict the pod after the source was already
frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector as the API reads it: null selects nothing, empty selects everything."""
    if selector is None:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        expression_matches(e, labels) for e in selector.get("matchExpressions") or []
    )


def selector_text(selector: Obj | None) -> str:
    """A LabelSelector as ``kubectl get -l`` spells it, for messages."""
    if selector is None:
        return "<none>"
    words = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        words.append({"Exists": key, "DoesNotExist": f"!{key}"}.get(op) or f"{key} {str(op).lower()} ({values})")
    return ",".join(words) or "<all>"


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


def node_affinity_refusals(pod: Obj, node: Obj) -> list[Refusal]:
    """What of the pod's nodeSelector and required node affinity ``node`` does not match."""
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
    return refusals


def taint_refusals(pod: Obj, node: Obj) -> list[Refusal]:
    """The taints of ``node`` that keep the pod off and that it does not tolerate."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    refusals = []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in BLOCKING_EFFECTS and not any(_tolerates(t, taint) for t in tolerations):
            shown = taint["key"] + (f"={taint['value']}" if taint.get("value") else "") + f":{taint['effect']}"
            refusals.append(
                Refusal(
                    "TargetIncompatible",
                    f"node {node['metadata']['name']} has taint {shown} that the pod does not tolerate",
                )
            )
    return refusals


def placement_refusals(pod: Obj, node: Obj) -> list[Refusal]:
    """Constraints of the pod that ``node`` violates on its own: nodeSelector, required node affinity, taints."""
    return node_affinity_refusals(pod, node) + taint_refusals(pod, node)
