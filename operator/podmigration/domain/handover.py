"""StatefulSet hand-over: which pods the mutating webhook turns into restores, and what it makes of them.

The webhook configuration (chart: <release>-statefulset-handover) matches no pod until a migration lists its pod
here; its match condition is rebuilt from every unfinished migration that recorded ``status.handover`` (so the
list is the same whichever migration rebuilds it, and an operator restart loses nothing).
"""

from __future__ import annotations

import copy
import logging
import re
import threading

from .. import api
from ..api import phases
from ..api.types import Obj, handover_pod, status_of
from . import podspec, volumes

log = logging.getLogger(__name__)

#: What Kubernetes accepts as a namespace name and as a pod name.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

#: Serialises the rebuilds of this process's migrations (each reads every migration, then writes the list).
SYNC_LOCK = threading.Lock()


def handed_over(migrations: list[Obj]) -> list[tuple[str, str]]:
    """(namespace, pod) of every unfinished migration whose pod is being recreated by its owner."""
    return sorted(
        {
            (m["metadata"]["namespace"], m["status"]["handover"]["pod"])
            for m in migrations
            if handover_pod(m) and not phases.is_terminal(m["status"].get("phase"))
        }
    )


def match_expression(pods: list[tuple[str, str]]) -> str:
    """CEL for the webhook's match condition: true exactly for those pods' creation.

    The names come from PodMigration status, which is pasted into an expression the API server evaluates for
    every pod creation: each must be a name Kubernetes allows (namespace a DNS-1123 label, pod a DNS-1123
    subdomain), and goes in as a quoted string literal, so no value can change what the expression says. A
    name no pod can have is left out (it matches nothing anyway)."""
    keys = []
    for namespace, name in pods:
        if not (DNS1123_LABEL.fullmatch(namespace) and len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name)):
            log.warning(
                "handed-over pod %r/%r is not a valid pod name: left out of the webhook's match", namespace, name
            )
            continue
        keys.append(cel_string(f"{namespace}/{name}"))
    if not keys:
        return "false"
    return f"(object.metadata.namespace + '/' + object.metadata.name) in [{', '.join(keys)}]"


def cel_string(value: str) -> str:
    """``value`` as a single-quoted CEL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def migration_for(pod_name: str, migrations: list[Obj]) -> Obj | None:
    return next(
        (m for m in migrations if handover_pod(m) == pod_name and not phases.is_terminal(m["status"].get("phase"))),
        None,
    )


def restore_annotations(pod_name: str, migration: Obj) -> dict[str, str]:
    """Our annotations on the restore of a handed-over pod: the webhook sets them, the guard requires exactly them."""
    annotations = {api.MIGRATION_ANNOTATION: migration["metadata"]["name"], api.MIGRATED_FROM_ANNOTATION: pod_name}
    originals = status_of(migration).get("originalImages")
    if originals:
        annotations[api.ORIGINAL_IMAGES_ANNOTATION] = podspec.original_images_annotation(originals)
    return annotations


def restore_of(pod: Obj, migration: Obj, image: str) -> Obj:
    """The owner's new pod turned into this migration's restore: same identity, checkpoint images, the target."""
    status = migration["status"]
    restored = copy.deepcopy(pod)
    restored["metadata"].setdefault("annotations", {}).update(restore_annotations(pod["metadata"]["name"], migration))
    restored["spec"] = podspec.restore_spec(
        pod["spec"], migration_uid=migration["metadata"]["uid"], target_node=status["targetNode"]
    )
    if status.get("volumes"):
        volumes.add_volumes_gate(restored, pod, image)
    return restored
