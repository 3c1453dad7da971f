"""The interface every owner strategy implements, and the defaults a bare pod needs."""

from __future__ import annotations

from typing import Protocol

from ...api.types import Obj
from ..refusals import Refusal


def controller_of(pod: Obj) -> Obj | None:
    """The pod's controller reference (ownerReferences entry with controller: true), if any."""
    return next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)


class OwnerAccess(Protocol):
    """The cluster write a strategy needs at the hand-over (the runner's Kube)."""

    def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj: ...


class OwnerStrategy(Protocol):
    """One owner kind's part in a migration; every method is idempotent (a step may run again after a restart)."""

    kind: str
    #: True when the owner recreates the pod under its own name (the replacement is the owner's, not ours).
    same_name: bool

    def refusals(self, pod: Obj, owner: Obj | None) -> list[Refusal]:
        """What keeps the owner's pod from moving (``owner`` as read from the cluster, None if gone)."""
        ...

    def record(self, owner: Obj | None) -> Obj:
        """What to remember of the owner at Preparing, to tell later whether it changed under the migration."""
        ...

    def changed(self, recorded: Obj, owner: Obj | None) -> str | None:
        """Why the owner changed since ``record`` in a way that makes the move unsafe, or None."""
        ...

    def fence_keys(self, pod: Obj, owner: Obj | None, service_keys: list[str]) -> list[str]:
        """Which of the Services' selector keys the fence may take off the source (the rest would orphan it)."""
        ...

    def shape_replacement(self, body: Obj, source: Obj, owner: Obj | None) -> None:
        """Adjust the replacement before it is created, so its owner neither counts nor adopts it yet."""
        ...

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        """Make the replacement the owner's pod; runs while the killed source still exists."""
        ...
