"""Taking the source pod out of Service traffic while it is checkpointed, and putting it back.

Removing the label keys that Services select on makes the endpoint controllers drop the pod;
the removed labels are kept in an annotation so rollback (or an operator restart) can restore them.
The fence annotation doubles as a lock: one migration per pod at a time.
"""

from __future__ import annotations

import json

from .. import api
from ..api.types import Obj, annotations_of


def selecting_services(labels: dict[str, str], services: list[Obj]) -> list[Obj]:
    """Services whose (non-empty) selector matches ``labels``."""
    result = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            result.append(service)
    return result


def fenced_by(pod: Obj) -> str | None:
    return (annotations_of(pod).get(api.FENCED_BY_ANNOTATION)) or None


def fenced_labels(pod: Obj) -> dict[str, str]:
    raw = annotations_of(pod).get(api.FENCED_LABELS_ANNOTATION)
    return json.loads(raw) if raw else {}


def original_labels(pod: Obj) -> dict[str, str]:
    """The pod's labels as they were before any fence."""
    return {**(pod["metadata"].get("labels") or {}), **fenced_labels(pod)}


def service_keys(pod: Obj, services: list[Obj]) -> list[str]:
    """The label keys the Services that select the pod select on."""
    labels = pod["metadata"].get("labels") or {}
    return sorted({k for s in selecting_services(labels, services) for k in s["spec"]["selector"]})


def fence_patch(pod: Obj, keys: list[str], migration_name: str) -> Obj:
    """Merge patch that fences the pod by taking off ``keys`` (those of ``service_keys`` its owner allows);
    carries resourceVersion so a concurrent change fails with 409."""
    labels = pod["metadata"].get("labels") or {}
    removed = {k: labels[k] for k in keys if k in labels}
    return {
        "metadata": {
            "resourceVersion": pod["metadata"]["resourceVersion"],
            "labels": {k: None for k in removed},
            "annotations": {
                api.FENCED_BY_ANNOTATION: migration_name,
                api.FENCED_LABELS_ANNOTATION: json.dumps(removed, sort_keys=True),
            },
        }
    }


def unfence_patch(pod: Obj, migration_name: str) -> Obj | None:
    """Merge patch that puts the pod back in traffic, or ``None`` if this migration did not fence it."""
    if fenced_by(pod) != migration_name:
        return None
    return {
        "metadata": {
            "labels": fenced_labels(pod),
            "annotations": {api.FENCED_BY_ANNOTATION: None, api.FENCED_LABELS_ANNOTATION: None},
        }
    }
