"""Owners that count their pods by a label selector (ReplicaSet, Job): the count never moves because of the move.

While the source is fenced it keeps every label its owner selects on (taking one off would orphan it and the
controller would start an extra pod). The replacement restores with one selector label held back, so the owner
neither counts nor adopts it. At the cut-over the killed source is handed over: the replacement gets the label
back and the owner as its controller, then the source is deleted; what else each kind needs is its own class.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ... import api
from ...api.types import Obj, annotations_of
from ..refusals import Refusal
from .base import OwnerAccess, controller_of

#: The label the ReplicaSet adds to its pods, unique per template: the one to hold back when it is selected on.
TEMPLATE_HASH = "pod-template-hash"


def _match_labels(owner: Obj | None) -> dict[str, str]:
    return dict((((owner or {}).get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def _held_key(owner: Obj | None, service_keys: Sequence[str] = ()) -> str | None:
    """The selector label to hold back on the replacement: the template hash, else one no Service uses."""
    keys = sorted(_match_labels(owner))
    if TEMPLATE_HASH in keys:
        return TEMPLATE_HASH
    return next((k for k in keys if k not in service_keys), keys[0] if keys else None)


class SelectorOwner:
    """The shared part; subclasses set ``kind`` and add to ``hand_over``."""

    kind = ""
    same_name = False

    def refusals(self, pod: Obj, owner: Obj | None) -> list[Refusal]:
        meta = pod["metadata"]
        ref = f"pod {meta.get('namespace')}/{meta['name']}"
        name = (controller_of(pod) or {}).get("name")
        if owner is None:
            return [Refusal("OwnerNotFound", f"{ref} is owned by {self.kind} {name}, which does not exist")]
        if not _match_labels(owner):
            return [
                Refusal(
                    "ControllerOwned",
                    f"{ref}: {self.kind} {name} selects its pods by matchExpressions only; "
                    "the migration needs a matchLabels key to hold back",
                )
            ]
        return []

    def record(self, owner: Obj | None) -> Obj:
        meta = (owner or {}).get("metadata") or {}
        return {
            "kind": self.kind,
            "apiVersion": (owner or {}).get("apiVersion"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
        }

    def changed(self, recorded: Obj, owner: Obj | None) -> str | None:
        """Any change of the owner's spec during the move (a scale, a rollout, a suspended Job): roll back and let
        the owner decide about the source, rather than hand it a pod it may no longer want."""
        meta = (owner or {}).get("metadata") or {}
        if owner is None or meta.get("uid") != recorded.get("uid"):
            return f"{self.kind} {recorded.get('name')} was deleted during the migration"
        if meta.get("generation") != recorded.get("generation"):
            return f"{self.kind} {recorded.get('name')} changed during the migration ({self.change_hint})"
        return None

    change_hint = "its spec changed"

    def fence_keys(self, pod: Obj, owner: Obj | None, service_keys: list[str]) -> list[str]:
        selected = set(_match_labels(owner)) | {TEMPLATE_HASH}
        return [k for k in service_keys if k not in selected]

    def shape_replacement(self, body: Obj, source: Obj, owner: Obj | None) -> None:
        labels = body["metadata"].setdefault("labels", {})
        key = _held_key(owner)
        if key is None or key not in labels:
            return
        annotations = body["metadata"].setdefault("annotations", {})
        annotations[api.HELD_LABELS_ANNOTATION] = json.dumps({key: labels.pop(key)}, sort_keys=True)

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        """Give the replacement its held label and the source's controller reference (the caller then deletes
        the source); ``adoption`` adds what the kind needs on top."""
        held = json.loads(annotations_of(replacement).get(api.HELD_LABELS_ANNOTATION) or "{}")
        controller = controller_of(source)
        kube.patch_pod(
            namespace,
            replacement["metadata"]["name"],
            {
                "metadata": {
                    "labels": held,
                    "annotations": {api.HELD_LABELS_ANNOTATION: None},
                    "ownerReferences": [controller] if controller else None,
                    **self.adoption(source),
                }
            },
        )

    def adoption(self, source: Obj) -> Obj:
        """Extra metadata of the replacement at the hand-over."""
        return {}
