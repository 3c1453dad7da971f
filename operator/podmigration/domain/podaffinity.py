"""Required inter-pod affinity and anti-affinity on one node, as the scheduler's InterPodAffinity filter checks them:
the pod's own podAffinity and podAntiAffinity terms, and the required podAntiAffinity of the pods already there
against this pod (the rule holds both ways).

A term selects the pods its labelSelector matches (null: none) in its ``namespaces``, in the namespaces its
namespaceSelector matches, or in its pod's own namespace when it gives neither; two pods are together when their
nodes have the same value of the term's topologyKey. matchLabelKeys and mismatchLabelKeys are not read: the API
server merges them into labelSelector when it creates the pod (Kubernetes 1.31 and later), which is what the
scheduler evaluates too. Preferred terms are preferences and are not checked.

With the pods of one namespace only (a user who may not list the others), what those pods cannot decide is not
checked: a term that selects namespaces by label (their labels are unknown), and the pod's own podAffinity unless one
of its terms keeps to that namespace (a pod counts only when every term selects it, so then all that count are known).
A conflict found among the pods read is real, so anti-affinity is still checked against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..api.types import Obj
from .refusals import Refusal
from .scheduling import selector_text, selects

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
REASON = "AffinityNotSatisfied"


def required_terms(pod: Obj, kind: str) -> list[Obj]:
    """The required terms of ``kind`` (``podAffinity`` or ``podAntiAffinity``) of ``pod``."""
    return ((((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}).get(REQUIRED)) or []


def uses_namespace_selector(pods: Iterable[Obj]) -> bool:
    """Whether any required term of ``pods`` selects namespaces by label: only then are namespace labels needed."""
    return any(
        term.get("namespaceSelector") is not None
        for pod in pods
        for kind in ("podAffinity", "podAntiAffinity")
        for term in required_terms(pod, kind)
    )


def term_selects(term: Obj, owner: Obj, candidate: Obj, namespace_labels: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether ``term`` of ``owner``'s affinity selects ``candidate`` (see the module's docstring)."""
    namespace = candidate["metadata"].get("namespace") or ""
    listed = term.get("namespaces") or []
    by_label = term.get("namespaceSelector")
    if not listed and by_label is None:
        listed = [owner["metadata"].get("namespace")]
    in_scope = namespace in listed or selects(by_label, namespace_labels.get(namespace) or {})
    return in_scope and selects(term.get("labelSelector"), candidate["metadata"].get("labels") or {})


def _describe(kind: str, term: Obj) -> str:
    return f"{kind} (topologyKey {term.get('topologyKey')}, labelSelector {selector_text(term.get('labelSelector'))})"


def _ref(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def _topology(term: Obj) -> str:
    return term.get("topologyKey") or ""


class _Placement:
    """``pod`` on ``node`` among ``others`` (pods bound to nodes, with their node's labels)."""

    def __init__(
        self,
        pod: Obj,
        node: Obj,
        others: Iterable[Obj],
        node_labels: Mapping[str, Mapping[str, str]],
        namespace_labels: Mapping[str, Mapping[str, str]],
        only_namespace: str | None,
    ) -> None:
        self.pod, self.name, self.namespace_labels = pod, node["metadata"]["name"], namespace_labels
        self.only_namespace = only_namespace
        self.here: Mapping[str, str] = node["metadata"].get("labels") or {}
        self.placed = [(other, node_labels.get(other["spec"]["nodeName"]) or {}) for other in others]

    def together(self, term: Obj, labels: Mapping[str, str]) -> bool:
        """Whether a pod on a node with ``labels`` is in the same domain of the term's topologyKey as the target."""
        key = _topology(term)
        return key in self.here and labels.get(key) == self.here[key]

    def domain(self, term: Obj) -> str:
        return f"{_topology(term)}={self.here[_topology(term)]}"

    def readable(self, term: Obj) -> bool:
        """Whether the pods read decide which of them ``term`` selects (see the module's docstring)."""
        return self.only_namespace is None or term.get("namespaceSelector") is None

    def all_known(self, terms: list[Obj]) -> bool:
        """Whether every pod that matches all of the pod's own ``terms`` is among the pods read."""
        if self.only_namespace is None:
            return True
        own = [self.pod["metadata"].get("namespace")]
        return all(self.readable(t) for t in terms) and any(
            set(t.get("namespaces") or own) == {self.only_namespace} for t in terms
        )

    def own_affinity(self) -> list[Refusal]:
        terms = required_terms(self.pod, "podAffinity")
        missing = [t for t in terms if _topology(t) not in self.here]
        if missing:
            return [
                Refusal(
                    REASON,
                    f"node {self.name} has no label {_topology(t)}, the topologyKey of the pod's required "
                    f"{_describe('podAffinity', t)}",
                )
                for t in missing
            ]
        if not self.all_known(terms):
            return []
        # As the scheduler: a pod counts when it matches every term and its node has a term's topologyKey. When
        # none does, the first pod of a group that is affine to itself may go wherever its topology keys exist.
        matching = [
            labels
            for other, labels in self.placed
            if all(term_selects(t, self.pod, other, self.namespace_labels) for t in terms)
            and any(_topology(t) in labels for t in terms)
        ]
        if not matching and all(term_selects(t, self.pod, self.pod, self.namespace_labels) for t in terms):
            return []
        return [
            Refusal(
                REASON,
                f"node {self.name} breaks the pod's required {_describe('podAffinity', t)}: no pod it selects runs "
                f"where {self.domain(t)}",
            )
            for t in terms
            if not any(self.together(t, labels) for labels in matching)
        ]

    def own_anti_affinity(self) -> list[Refusal]:
        refusals = []
        for term in filter(self.readable, required_terms(self.pod, "podAntiAffinity")):
            conflict = next(
                (
                    other
                    for other, labels in self.placed
                    if self.together(term, labels) and term_selects(term, self.pod, other, self.namespace_labels)
                ),
                None,
            )
            if conflict is not None:
                refusals.append(
                    Refusal(
                        REASON,
                        f"node {self.name} breaks the pod's required {_describe('podAntiAffinity', term)}: pod "
                        f"{_ref(conflict)} on node {conflict['spec']['nodeName']} has the same {self.domain(term)}",
                    )
                )
        return refusals

    def their_anti_affinity(self) -> list[Refusal]:
        return [
            Refusal(
                REASON,
                f"node {self.name} breaks the required {_describe('podAntiAffinity', term)} of pod {_ref(other)} on "
                f"node {other['spec']['nodeName']}: it selects this pod, and both would have {self.domain(term)}",
            )
            for other, labels in self.placed
            for term in filter(self.readable, required_terms(other, "podAntiAffinity"))
            if self.together(term, labels) and term_selects(term, other, self.pod, self.namespace_labels)
        ]


def affinity_refusals(
    pod: Obj,
    node: Obj,
    others: Iterable[Obj],
    node_labels: Mapping[str, Mapping[str, str]],
    namespace_labels: Mapping[str, Mapping[str, str]],
    only_namespace: str | None = None,
) -> list[Refusal]:
    """The required inter-pod rules that putting ``pod`` on ``node`` breaks: its own podAffinity and
    podAntiAffinity, and the podAntiAffinity of the pods already placed.

    ``others`` are the pods bound to nodes (not the pod itself), ``node_labels`` every node's labels by name,
    ``namespace_labels`` each namespace's labels (needed only for namespaceSelector terms); ``only_namespace``:
    ``others`` are the pods of that namespace only."""
    placement = _Placement(pod, node, others, node_labels, namespace_labels, only_namespace)
    return placement.own_affinity() + placement.own_anti_affinity() + placement.their_anti_affinity()
