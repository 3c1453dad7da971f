"""Pods of a StatefulSet keep their name, hostname and network identity: the controller recreates them itself.

Two pods of one name cannot exist, so the source (killed while frozen) is deleted first, and the pod that the
StatefulSet controller then creates from its template is turned into the restore by the operator's mutating
webhook (statefulset-handover), which matches exactly the pods being handed over and fails closed: while the
operator is down the controller's create is refused and retried, never started fresh. handover.py has the rest.
"""

from __future__ import annotations

from ...api.types import Obj
from .base import OwnerAccess
from .selector import SelectorOwner


class StatefulSetOwner(SelectorOwner):
    kind = "StatefulSet"
    change_hint = "scaled, or its template changed"
    same_name = True

    def shape_replacement(self, body: Obj, source: Obj, owner: Obj | None) -> None:
        return None  # the controller creates it; the webhook shapes it

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        return None  # created by its owner: owned from the start
