"""Base images on the target the way the kubelet would get them (issue 19, F12).

CRI-O restores on top of a container's base image and never pulls it. Copying it from the source node would hand
a tenant an image pulled with another tenant's secret; so the target's own kubelet pulls it, through a short-lived
pod with the migrating pod's pull secrets and service account, under each container's imagePullPolicy. These are
the decisions around that pod: which containers it needs, its spec, and what its status says.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import api
from ..api.types import Obj
from . import podspec

#: A command no image holds: the runtime fails to start it after the pull, so the workload never runs.
NEVER_RUNS = "/podmigration-prepull-never-runs"
#: Waiting reasons of a container whose image the kubelet has (start failed after the pull).
_PULLED = frozenset({"CreateContainerError", "CreateContainerConfigError", "RunContainerError", "StartError"})
#: Waiting reasons of a container whose image the kubelet would not or could not get.
_REFUSED = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "ImageInspectError",
        "RegistryUnavailable",
        "SignatureValidationFailed",
    }
)


@dataclass(frozen=True)
class Outcome:
    """What the pre-pull pod ended with: ``reason`` None when every image is on the target."""

    reason: str | None
    message: str


def prepull_name(migration_uid: str) -> str:
    return f"podmigration-prepull-{migration_uid}"


def pull_policy(container: Obj, original: str) -> str:
    """The container's policy; a replacement's spec says Never (it names a checkpoint image), so for the original
    image the API server's default applies: Always for :latest or no tag, else IfNotPresent."""
    if container.get("image") == original and container.get("imagePullPolicy"):
        return str(container["imagePullPolicy"])
    _, _, tag = original.rpartition("/")[2].partition(":")
    return "Always" if "@" not in original and tag in ("", "latest") else "IfNotPresent"


def containers_to_pull(pod: Obj) -> list[Obj]:
    """The pre-pull pod's containers: one per container of ``pod``, its original image under its policy. Present
    images go to the kubelet too: it alone knows whether the pod's credentials must be checked again for one
    another pod pulled (KubeletEnsureSecretPulledImages); Never with the image missing gets ErrImageNeverPull."""
    originals = podspec.original_images(pod)
    return [
        {"name": c["name"], "image": originals[c["name"]], "imagePullPolicy": pull_policy(c, originals[c["name"]])}
        for c in pod["spec"]["containers"]
    ]


def prepull_pod(pod: Obj, needed: list[Obj], *, migration: Obj, target_node: str, deadline_seconds: int) -> Obj:
    """A pod the target kubelet pulls ``needed`` for as it would for ``pod`` (its pull secrets, its service
    account's through admission) and whose containers never start: no volumes, no token, tiny requests, a
    restricted security context (PodSecurity), gone after ``deadline_seconds`` at the latest."""
    spec = pod["spec"]
    uid = migration["metadata"]["uid"]
    tiny = {"cpu": "10m", "memory": "16Mi"}
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": prepull_name(uid),
            "namespace": pod["metadata"]["namespace"],
            "labels": {api.PREPULL_LABEL: uid},
            "ownerReferences": [
                {"apiVersion": api.API_VERSION, "kind": api.KIND, "name": migration["metadata"]["name"], "uid": uid}
            ],
        },
        "spec": {
            "nodeName": target_node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline_seconds,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "serviceAccountName": spec.get("serviceAccountName") or "default",
            "imagePullSecrets": spec.get("imagePullSecrets") or [],
            "tolerations": spec.get("tolerations") or [],
            "containers": [
                {
                    **c,
                    "command": [NEVER_RUNS],
                    "resources": {"requests": tiny, "limits": tiny},
                    "securityContext": security,
                }
                for c in needed
            ],
        },
    }


def outcome(prepull: Obj) -> Outcome | None:
    """Done (every image pulled, or one refused, naming it and the kubelet's message) or None: still pulling."""
    status = prepull.get("status") or {}
    images = {c["name"]: c["image"] for c in prepull["spec"]["containers"]}
    seen = {c["name"]: c for c in status.get("containerStatuses") or []}
    pending = []
    for name, image in images.items():
        state = (seen.get(name) or {}).get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in _REFUSED:
            reason = "ImageNotOnTarget" if waiting["reason"] == "ErrImageNeverPull" else "ImagePullFailed"
            why = waiting.get("message") or waiting["reason"]
            return Outcome(reason, f"the kubelet of the target did not get image {image}: {why}")
        if not (waiting.get("reason") in _PULLED or state.get("terminated") or state.get("running")):
            pending.append(image)
    if not pending:
        return Outcome(None, f"{len(images)} base image(s) pulled by the target's kubelet")
    if status.get("phase") == "Failed":
        why = status.get("message") or status.get("reason") or "no message"
        return Outcome("ImagePullFailed", f"the pod pulling {', '.join(pending)} on the target failed: {why}")
    return None


def always_pull_forced(created: Obj) -> str | None:
    """Why a replacement cannot restore, when admission (AlwaysPullImages) set Always on a container that names a
    checkpoint image: the kubelet would pull it from a registry named localhost and fail; None otherwise."""
    forced = [
        c["name"]
        for c in created["spec"]["containers"]
        if c.get("imagePullPolicy") == "Always" and f"{api.CHECKPOINT_IMAGE_REPOSITORY}/" in str(c.get("image"))
    ]
    if not forced:
        return None
    return (
        f"admission set imagePullPolicy Always on container(s) {', '.join(forced)} of the replacement (the "
        "AlwaysPullImages admission plugin?): their checkpoint images exist only in the target's storage, the "
        "kubelet would try to pull them from a registry"
    )
