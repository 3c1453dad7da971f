"""The replacement pod: the source pod's spec, pointed at checkpoint images and bound to the target."""

from __future__ import annotations

import copy
from typing import Any

from . import api
from .fencing import original_labels

Obj = dict[str, Any]

#: Metadata the API server owns or that belongs to the source pod's identity.
_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation", "managedFields", "ownerReferences",
                    "finalizers", "generateName", "selfLink")
#: Annotations that describe the source's migration state, not the workload.
_SOURCE_ANNOTATIONS = (api.FENCED_BY_ANNOTATION, api.FENCED_LABELS_ANNOTATION)

MAX_NAME = 253


def replacement_name(pod_name: str, migration_uid: str) -> str:
    """Stable per migration, so a restarted operator finds the pod it already created."""
    suffix = "-" + migration_uid.replace("-", "")[:5].lower()
    return pod_name[:MAX_NAME - len(suffix)] + suffix


def replacement_pod(pod: Obj, *, migration_name: str, migration_uid: str, target_node: str) -> Obj:
    """Build the pod that restores ``pod`` from its checkpoint images on ``target_node``.

    Containers keep volumes, mounts, env and ports (CRI-O refuses a restore whose bind mounts
    differ); init containers are dropped because they already ran and their effects are in the
    checkpoint; ``nodeName`` binds the pod directly, the scheduler's checks were done in preflight.
    """
    meta = copy.deepcopy(pod["metadata"])
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    # kopf.zalando.org/: bookkeeping of another kopf-based operator that handles pods (this operator keeps
    # its own under its API group, on PodMigrations only); copied, it would make that operator take the
    # replacement for an already handled pod.
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in _SOURCE_ANNOTATIONS and not k.startswith("kopf.zalando.org/")}
    annotations[api.MIGRATION_ANNOTATION] = migration_name
    annotations[api.MIGRATED_FROM_ANNOTATION] = pod["metadata"]["name"]
    meta.update(name=replacement_name(pod["metadata"]["name"], migration_uid),
                labels=original_labels(pod), annotations=annotations)

    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": restore_spec(pod["spec"], migration_uid=migration_uid, target_node=target_node)}


def restore_spec(spec: Obj, *, migration_uid: str, target_node: str) -> Obj:
    """A pod spec turned into the restore of this migration's checkpoints: checkpoint images never pulled,
    init containers dropped (they already ran; their effects are in the checkpoint), bound to the target.

    Shared by the replacement built from the source and the StatefulSet pod its controller recreates.
    """
    spec = copy.deepcopy(spec)
    spec.pop("initContainers", None)
    spec.pop("ephemeralContainers", None)
    for container in spec["containers"]:
        container["image"] = api.checkpoint_image(migration_uid, container["name"])
        container["imagePullPolicy"] = "Never"
    spec["nodeName"] = target_node
    return spec


def base_images(pod: Obj) -> list[str]:
    """Images the target must hold before a restore: CRI-O restores on top of the base image, never pulls it.

    The references are the pod's own, as the source node's storage knows them (no registry to resolve
    digests against); init container images are not needed because init containers are not re-run.
    """
    return list(dict.fromkeys(c["image"] for c in pod["spec"]["containers"]))
