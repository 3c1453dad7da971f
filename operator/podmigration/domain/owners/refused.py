"""Owners whose pods never move, each with its own reason: the refusal is the whole strategy."""

from __future__ import annotations

from ...api.types import Obj, annotations_of
from ..refusals import Refusal
from .bare import Bare

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

_WHY = {
    "DaemonSet": (
        "DaemonSetPod",
        "a DaemonSet runs one pod on every node it selects; the target already has its own, "
        "and this one goes with its node",
    ),
    "Node": (
        "StaticPod",
        "it is a static pod, defined by a manifest of its node's kubelet; the API object is only "
        "a mirror, and the kubelet would restart it on that node",
    ),
}


class Refused(Bare):
    """Refuses with ``reason``; what a refused pod would otherwise need is never asked."""

    def __init__(self, kind: str, reason: str, why: str) -> None:
        self.kind, self.reason, self.why = kind, reason, why

    @staticmethod
    def is_static(pod: Obj) -> bool:
        return MIRROR_ANNOTATION in annotations_of(pod)

    @classmethod
    def static(cls) -> Refused:
        return cls("Node", *_WHY["Node"])

    @classmethod
    def for_kind(cls, kind: str) -> Refused:
        reason, why = _WHY.get(
            kind,
            (
                "ControllerOwned",
                f"pods of a {kind} cannot be migrated yet (supported owners: "
                "none, ReplicaSet and so Deployment, StatefulSet, Job and so CronJob)",
            ),
        )
        return cls(kind, reason, why)

    def refusals(self, pod: Obj, owner: Obj | None) -> list[Refusal]:
        meta = pod["metadata"]
        ref = f"pod {meta.get('namespace')}/{meta['name']}"
        controller = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
        by = f" (managed by {controller.get('kind')} {controller.get('name')})" if controller else ""
        return [Refusal(self.reason, f"{ref}{by} cannot be migrated: {self.why}")]
