"""Admission decisions that need cluster state (the migrations), for the operator's webhooks (admission.py).

Whether a pod the StatefulSet controller creates may use checkpoint images: only as a hand-over's restore.

A checkpoint image holds all of a pod's memory, so only the operator may create pods that use one (the chart's
ValidatingAdmissionPolicy <release>-pod-guard). The one exception is the StatefulSet controller's create of a pod
being handed over, which the mutating webhook statefulset-handover turned into the restore; the policy lets that
requester through to the webhook handover-guard, which asks this module. It allows exactly that restore, so a
StatefulSet whose template names checkpoint images (another migration's, or one of another namespace) gets nothing.

Whether a replacement may get an ephemeral container: not until its migration ended. Such a container starts before
the init containers (the volumes gate) and runs unfrozen beside the restore, so it could plant links where the target
helper unpacks the moved volumes, or read the restored memory before the migration verified it. The source is kept
free of them by pod-guard alone (its fence annotation), without this webhook.
"""

from __future__ import annotations

from .. import api
from ..api import phases
from ..api.types import Obj, status_of
from . import handover

#: In every image reference that names a checkpoint image (the chart's CEL matches the same).
CHECKPOINT_MARKER = api.CHECKPOINT_IMAGE_REPOSITORY.rsplit("/", 1)[1] + "/"
ANNOTATION_PREFIX = f"{api.GROUP}/"


def checkpoint_images(pod: Obj) -> list[tuple[str, str]]:
    """(where, reference) of each image reference of the pod that names a checkpoint image."""
    spec = pod.get("spec") or {}
    named = [
        (f"{kind} {c.get('name')}", c.get("image") or "")
        for kind, key in (
            ("container", "containers"),
            ("init container", "initContainers"),
            ("ephemeral container", "ephemeralContainers"),
        )
        for c in spec.get(key) or []
    ]
    named += [
        (f"volume {v.get('name')}", (v.get("image") or {}).get("reference") or "") for v in spec.get("volumes") or []
    ]
    return [(where, ref) for where, ref in named if CHECKPOINT_MARKER in ref]


def own_annotations(pod: Obj) -> dict[str, str]:
    return {
        k: v
        for k, v in ((pod.get("metadata") or {}).get("annotations") or {}).items()
        if k.startswith(ANNOTATION_PREFIX)
    }


def handover_denial(pod: Obj, migrations: list[Obj]) -> str | None:
    """Why ``pod`` (created by the StatefulSet controller, using checkpoint images or podmigration.dev/
    annotations) is not exactly the restore of a migration handing it over, or None when it is.

    ``migrations``: the PodMigrations of its namespace. Exactly: listed in an unfinished migration's
    ``status.handover``, owned by the StatefulSet the migration recorded, the annotations the mutating webhook
    sets and nothing else of ours, and each container on its own checkpoint image of that migration, no other.
    """
    name = (pod.get("metadata") or {}).get("name") or ""
    migration = handover.migration_for(name, migrations)
    if migration is None:
        return (
            f"pod {name} uses checkpoint images or podmigration.dev/ annotations, but no migration is handing "
            "it over: only the podmigration operator may create such pods"
        )
    mig_name, uid = migration["metadata"]["name"], migration["metadata"]["uid"]
    owner = status_of(migration).get("owner") or {}
    controller: Obj = next((r for r in (pod["metadata"].get("ownerReferences") or []) if r.get("controller")), {})
    if (controller.get("kind"), controller.get("uid")) != ("StatefulSet", owner.get("uid")):
        return (
            f"pod {name} is not owned by StatefulSet {owner.get('name')} (uid {owner.get('uid')}), which "
            f"PodMigration {mig_name} is handing it over to"
        )
    expected = handover.restore_annotations(name, migration)
    if own_annotations(pod) != expected:
        return f"pod {name} carries podmigration.dev/ annotations {own_annotations(pod)}, expected {expected}"
    restore = [(f"container {c['name']}", api.checkpoint_image(uid, c["name"])) for c in pod["spec"]["containers"]]
    if checkpoint_images(pod) != restore:
        return (
            f"pod {name} is not the restore of PodMigration {mig_name}: its checkpoint images are "
            f"{_listed(checkpoint_images(pod))}, expected {_listed(restore)}"
        )
    return None


def _listed(images: list[tuple[str, str]]) -> str:
    return "; ".join(f"{where} {ref}" for where, ref in images) or "none"


def ephemeral_denial(pod: Obj, migrations: list[Obj]) -> str | None:
    """Why ``pod`` (which carries a podmigration.dev/migration annotation) may not get ephemeral containers now:
    it is the replacement of a migration that has not ended (Restoring or Finalizing). None otherwise,
    e.g. once its migration succeeded, when the pod is an ordinary migrated pod."""
    meta = pod.get("metadata") or {}
    name = meta.get("name")
    ours = (meta.get("annotations") or {}).get(api.MIGRATION_ANNOTATION)
    migration = next(
        (
            m
            for m in migrations
            if m["metadata"]["name"] == ours
            and status_of(m).get("targetPod") == name
            and not phases.is_terminal(m["status"].get("phase"))
        ),
        None,
    )
    if migration is None:
        return None
    return (
        f"pod {name} is being restored by PodMigration {ours} (phase {migration['status'].get('phase')}): "
        "ephemeral containers may be added only once the migration has ended"
    )
