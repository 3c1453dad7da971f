"""The replacement pod: the source pod's spec, pointed at checkpoint images and bound to the target."""

from __future__ import annotations

import copy
import json
import re

from .. import api
from ..api.types import Obj, annotations_of
from .fencing import original_labels

#: Metadata the API server owns or that belongs to the source pod's identity.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "generateName",
    "selfLink",
)
#: Annotations that describe the source's migration state, not the workload.
_SOURCE_ANNOTATIONS = (api.FENCED_BY_ANNOTATION, api.FENCED_LABELS_ANNOTATION)

MAX_NAME = 253
#: The suffix replacement_name adds.
_SUFFIX = re.compile(r"-[0-9a-f]{5}$")


def replacement_name(pod_name: str, migration_uid: str) -> str:
    """Stable per migration, so a restarted operator finds the pod it already created."""
    suffix = "-" + migration_uid.replace("-", "")[:5].lower()
    return pod_name[: MAX_NAME - len(suffix)] + suffix


def replacement_name_of(pod: Obj, migration_uid: str) -> str:
    """replacement_name of the pod, a replacement's own suffix replaced rather than added to, so names do not grow
    with each move."""
    name: str = pod["metadata"]["name"]
    if api.MIGRATION_ANNOTATION in annotations_of(pod):
        name = _SUFFIX.sub("", name)
    return replacement_name(name, migration_uid)


def original_images(pod: Obj) -> dict[str, str]:
    """Container name -> the image it was created with: a replacement's spec names checkpoint images, so its
    annotation says; for any other pod (or a container the annotation lacks), the spec."""
    try:
        recorded = json.loads(annotations_of(pod).get(api.ORIGINAL_IMAGES_ANNOTATION) or "{}")
    except ValueError:
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    return {c["name"]: str(recorded.get(c["name"]) or c["image"]) for c in pod["spec"]["containers"]}


def replacement_pod(pod: Obj, *, migration_name: str, migration_uid: str, target_node: str) -> Obj:
    """Build the pod that restores ``pod`` from its checkpoint images on ``target_node``.

    Containers keep volumes, mounts, env and ports (CRI-O refuses a restore whose bind mounts
    differ); init containers are dropped because they already ran and their effects are in the
    checkpoint; ``nodeName`` binds the pod directly, the scheduler's checks were done in preflight
    (placement.py says why it cannot go through the scheduler).
    """
    meta = copy.deepcopy(pod["metadata"])
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    # kopf.zalando.org/: bookkeeping of another kopf-based operator that handles pods (this operator keeps
    # its own under its API group, on PodMigrations only); copied, it would make that operator take the
    # replacement for an already handled pod.
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in _SOURCE_ANNOTATIONS and not k.startswith("kopf.zalando.org/")
    }
    annotations[api.MIGRATION_ANNOTATION] = migration_name
    annotations[api.MIGRATED_FROM_ANNOTATION] = pod["metadata"]["name"]
    annotations[api.ORIGINAL_IMAGES_ANNOTATION] = original_images_annotation(original_images(pod))
    meta.update(name=replacement_name_of(pod, migration_uid), labels=original_labels(pod), annotations=annotations)

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": restore_spec(pod["spec"], migration_uid=migration_uid, target_node=target_node),
    }


def restore_spec(spec: Obj, *, migration_uid: str, target_node: str) -> Obj:
    """A pod spec turned into the restore of this migration's checkpoints: checkpoint images never pulled,
    init containers dropped (they already ran; their effects are in the checkpoint), bound to the target.

    Shared by the replacement built from the source and the StatefulSet pod its controller recreates.
    """
    spec = copy.deepcopy(spec)
    spec.pop("initContainers", None)
    spec.pop("ephemeralContainers", None)
    if spec.get("volumes"):
        # A replacement moved again: its volume gate (with its init container) is the last restore's, not the pod's.
        spec["volumes"] = [v for v in spec["volumes"] if v.get("name") != api.VOLUMES_GATE_VOLUME]
    for container in spec["containers"]:
        container["image"] = api.checkpoint_image(migration_uid, container["name"])
        container["imagePullPolicy"] = "Never"
    spec["nodeName"] = target_node
    return spec


def restored_by(pod: Obj) -> str | None:
    """The uid of the migration whose replacement ``pod`` is (its spec names that migration's checkpoint images),
    or None: on its node those names are aliases of its own images (for its restarts) until it is gone."""
    first = pod["spec"]["containers"][0]
    prefix, suffix = f"{api.CHECKPOINT_IMAGE_REPOSITORY}/", f"-{first['name']}:{api.CHECKPOINT_IMAGE_TAG}".lower()
    image = str(first.get("image") or "")
    if not (image.startswith(prefix) and image.endswith(suffix)):
        return None
    uid = image[len(prefix) : -len(suffix)]
    if all(c.get("image") == api.checkpoint_image(uid, c["name"]) for c in pod["spec"]["containers"]):
        return uid
    return None


def original_images_annotation(images: dict[str, str]) -> str:
    return json.dumps(images, sort_keys=True, separators=(",", ":"))


def base_images(pod: Obj) -> list[str]:
    """Images the target must hold before a restore: CRI-O restores on top of the base image, never pulls it.

    The references are the pod's original ones (a replacement's spec names checkpoint images), as the source
    node's storage knows them (no registry to resolve digests against); init container images are not needed
    because init containers are not re-run.
    """
    return list(dict.fromkeys(original_images(pod).values()))
