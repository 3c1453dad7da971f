"""Pods of a ReplicaSet (and so of a Deployment): the replica count never grows or shrinks because of the move.

Before the hand-over the killed source gets the lowest deletion cost: between the replacement's adoption and the
source's deletion the ReplicaSet sees one pod too many, and if it acts on it first, its own ranking picks the
source, never the replacement.
"""

from __future__ import annotations

from ...api.types import Obj
from .base import OwnerAccess
from .selector import SelectorOwner

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
#: The lowest deletion cost: of the pods of a ReplicaSet, the one it removes first when it has one too many.
LOWEST_COST = str(-(2**31))


class ReplicaSetOwner(SelectorOwner):
    kind = "ReplicaSet"
    change_hint = "scaled, or a Deployment rollout began"

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        kube.patch_pod(
            namespace, source["metadata"]["name"], {"metadata": {"annotations": {DELETION_COST: LOWEST_COST}}}
        )
        super().hand_over(kube, namespace, source, replacement)
