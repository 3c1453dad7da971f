"""A pod without a controller: nothing counts it, nothing adopts it, nothing to hand over."""

from __future__ import annotations

from ...api.types import Obj
from ..refusals import Refusal
from .base import OwnerAccess


class Bare:
    kind = "Pod"
    same_name = False

    def refusals(self, pod: Obj, owner: Obj | None) -> list[Refusal]:
        return []

    def record(self, owner: Obj | None) -> Obj:
        return {}

    def changed(self, recorded: Obj, owner: Obj | None) -> str | None:
        return None

    def fence_keys(self, pod: Obj, owner: Obj | None, service_keys: list[str]) -> list[str]:
        return list(service_keys)

    def shape_replacement(self, body: Obj, source: Obj, owner: Obj | None) -> None:
        return None

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        return None
