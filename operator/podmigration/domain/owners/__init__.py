"""What the pod's owner needs from a migration, one strategy per owner kind behind one interface.

The state machine asks the strategy of the source pod's controller (none: a bare pod) what blocks the move,
which labels the fence may take off, how the replacement is shaped while it restores, and how it is handed over
to the owner at the cut-over; it never branches on owner kinds itself.
"""

from __future__ import annotations

from collections.abc import Callable

from ...api.types import Obj
from .bare import Bare
from .base import OwnerStrategy, controller_of
from .job import JobOwner
from .refused import Refused
from .replicaset import ReplicaSetOwner
from .statefulset import StatefulSetOwner

_BY_KIND: dict[str, OwnerStrategy] = {
    "ReplicaSet": ReplicaSetOwner(),
    "Job": JobOwner(),
    "StatefulSet": StatefulSetOwner(),
}

__all__ = ["OwnerStrategy", "by_kind", "controller_of", "read_owner", "strategy_for"]


def strategy_for(pod: Obj) -> OwnerStrategy:
    """The strategy for ``pod``'s controller; kinds without one are refused with their own reason."""
    controller = controller_of(pod)
    if controller is None:
        return Refused.static() if Refused.is_static(pod) else Bare()
    return _BY_KIND.get(controller.get("kind", "")) or Refused.for_kind(controller.get("kind", ""))


def read_owner(pod: Obj, get_owner: Callable[[str, str, str, str], Obj | None]) -> Obj | None:
    """The controller object of ``pod`` when its kind has a strategy (others are refused unread).

    ``get_owner(namespace, kind, name, api_version)`` reads it (Kube.get_owner); None when it is gone.
    """
    controller = controller_of(pod)
    if controller is None or controller.get("kind") not in _BY_KIND:
        return None
    return get_owner(
        pod["metadata"]["namespace"], controller["kind"], controller["name"], controller.get("apiVersion") or "apps/v1"
    )


def by_kind(kind: str | None) -> OwnerStrategy:
    """The strategy recorded in a migration's ``status.owner.kind`` (the source may be gone by then)."""
    return _BY_KIND.get(kind or "", Bare())
