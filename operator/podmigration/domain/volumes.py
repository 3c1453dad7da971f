"""Which of a pod's volumes can move, what is copied, and how the replacement waits for the copy.

emptyDir content (disk or ``medium: Memory``) lives only on the source node: it is packed while the source is
frozen, sent like a checkpoint archive and unpacked into the replacement's own emptyDir before its restored
containers start (an init container waits for the target helper's word). hostPath content cannot move. A
PersistentVolumeClaim moves with the pod only when the target can use its volume while the source still holds it.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable, Mapping

from .. import api
from ..api.types import Obj
from .refusals import Refusal
from .scheduling import node_selector_matches

#: Volume plugins that attach a device to one node at a time (ReadWriteOnce enforced by the attach/detach
#: controller): the replacement could not start while the frozen source still holds the volume.
_ATTACHED_SOURCES = (
    "awsElasticBlockStore",
    "gcePersistentDisk",
    "azureDisk",
    "cinder",
    "rbd",
    "iscsi",
    "fc",
    "vsphereVolume",
    "portworxVolume",
    "csi",
)


def moved_volumes(pod: Obj) -> list[Obj]:
    """The emptyDir volumes whose content the migration copies: ``[{"name", "medium"}]``; not the volume gate of a
    replacement moved again (a restore gets a gate of its own)."""
    return [
        {"name": v["name"], "medium": (v["emptyDir"] or {}).get("medium") or "Disk"}
        for v in (pod.get("spec") or {}).get("volumes") or []
        if "emptyDir" in v and v["name"] != api.VOLUMES_GATE_VOLUME
    ]


def claim_names(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in (pod.get("spec") or {}).get("volumes") or []
        if "persistentVolumeClaim" in v
    ]


def read_claims(
    pod: Obj, get_claim: Callable[[str], Obj | None], get_volume: Callable[[str], Obj | None]
) -> dict[str, tuple[Obj | None, Obj | None]]:
    """Claim name -> (claim, bound volume), as read from the cluster, for ``volume_refusals``."""
    result: dict[str, tuple[Obj | None, Obj | None]] = {}
    for name in claim_names(pod):
        claim = get_claim(name)
        bound = ((claim or {}).get("spec") or {}).get("volumeName")
        result[name] = (claim, get_volume(bound) if bound else None)
    return result


def _node_affinity_allows(volume: Obj, node: Obj | None) -> bool:
    required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    return required is None or (node is not None and node_selector_matches(required, node))


def volume_refusals(pod: Obj, claims: Mapping[str, tuple[Obj | None, Obj | None]], target: Obj | None) -> list[Refusal]:
    """hostPath volumes, and claims the target cannot use while the source still holds them.

    ``target`` is the target node when known (None: checked against whatever node is picked later).
    """
    meta, spec = pod["metadata"], pod.get("spec") or {}
    ref = f"pod {meta.get('namespace')}/{meta['name']}"
    refusals = [
        Refusal(
            "UnsupportedVolume",
            f"volume {v['name']} of {ref} is a hostPath whose content lives only on node "
            f"{spec.get('nodeName')}; it cannot move with the pod",
        )
        for v in spec.get("volumes") or []
        if "hostPath" in v
    ]
    for name, (claim, volume) in claims.items():
        modes = set(((claim or {}).get("spec") or {}).get("accessModes") or [])
        if claim is None or volume is None:
            refusals.append(Refusal("UnsupportedVolume", f"claim {name} of {ref} is missing or not bound"))
        elif "ReadWriteOncePod" in modes:
            refusals.append(
                Refusal(
                    "UnsupportedVolume",
                    f"claim {name} of {ref} is ReadWriteOncePod: the replacement cannot use it "
                    "while the source pod still exists",
                )
            )
        elif modes & {"ReadWriteMany", "ReadOnlyMany"}:
            continue
        elif any(k in (volume.get("spec") or {}) for k in _ATTACHED_SOURCES):
            refusals.append(
                Refusal(
                    "UnsupportedVolume",
                    f"claim {name} of {ref} is ReadWriteOnce on a volume attached to one node at a "
                    "time; it cannot attach on the target while the source holds it "
                    "(use a ReadWriteMany claim)",
                )
            )
        elif target is not None and not _node_affinity_allows(volume, target):
            refusals.append(
                Refusal(
                    "UnsupportedVolume",
                    f"claim {name} of {ref} is bound to volume {volume['metadata']['name']}, which "
                    f"node {target['metadata']['name']} cannot reach (node affinity)",
                )
            )
    return refusals


def _mounts_by_path(container: Obj) -> list[tuple[str, str, str]]:
    """(mountPath, volume, subPath) of every mount of the container, longest path first (the innermost wins)."""
    mounts = [
        (m["mountPath"].rstrip("/") or "/", m["name"], m.get("subPath") or "")
        for m in container.get("volumeMounts") or []
    ]
    return sorted(mounts, key=lambda m: len(m[0]), reverse=True)


def truncations(pod: Obj, open_files: Mapping[str, list[Obj]]) -> dict[str, dict[str, int]]:
    """Volume -> {path inside the volume: size}: the files the dumped processes had open in a moved volume,
    with the size CRIU recorded at the dump.

    The source runs on between its dump and the freeze, so a file it appends to is longer in the copy than in
    the checkpoint; CRIU restores an open file only at its recorded size, and the restored process carries on
    from its dump, so the copy is cut back to that size (what was appended after the dump is re-done).
    ``open_files`` maps container name to the helper's ``openFiles`` (``path`` in the container, ``size``).
    """
    moved = {v["name"] for v in moved_volumes(pod)}
    result: dict[str, dict[str, int]] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        mounts = _mounts_by_path(container)
        for item in open_files.get(container["name"]) or []:
            path = posixpath.normpath("/" + str(item.get("path", "")).lstrip("/"))
            mount = next((m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")), None)
            if mount is None or mount[1] not in moved:
                continue
            mount_path, volume, sub_path = mount
            inside = posixpath.join(sub_path, posixpath.relpath(path, mount_path))
            sizes = result.setdefault(volume, {})
            sizes[inside] = min(int(item.get("size") or 0), sizes.get(inside, 1 << 62))
    return result


def _best_effort(pod: Obj) -> bool:
    containers = ((pod.get("spec") or {}).get("containers") or []) + (
        (pod.get("spec") or {}).get("initContainers") or []
    )
    return not any((c.get("resources") or {}).get(k) for c in containers for k in ("requests", "limits"))


#: The volume gate's securityContext: what Pod Security "restricted" asks of every container (it only polls a file).
RESTRICTED: Obj = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def add_volumes_gate(pod: Obj, source: Obj, image: str) -> None:
    """Adds to the replacement ``pod`` an init container that waits until the target helper has put the moved
    volumes in place (file ``done`` in a small emptyDir of its own), so the restored containers never start on
    an empty volume. Its resources keep the source's QoS class (none for BestEffort, requests = limits else)."""
    gate: Obj = {
        "name": api.VOLUMES_GATE_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", f"until [ -e {api.VOLUMES_GATE_FILE} ]; do sleep 0.1; done"],
        "volumeMounts": [{"name": api.VOLUMES_GATE_VOLUME, "mountPath": api.VOLUMES_GATE_PATH}],
        # Pod Security "restricted", so that replacements are admitted in namespaces that enforce it.
        "securityContext": copy.deepcopy(RESTRICTED),
    }
    if not _best_effort(source):
        small = {"cpu": "10m", "memory": "16Mi"}
        gate["resources"] = {"requests": dict(small), "limits": dict(small)}
    spec = pod["spec"]
    spec["initContainers"] = [gate]
    spec["volumes"] = list(spec.get("volumes") or []) + [
        {"name": api.VOLUMES_GATE_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    ]
