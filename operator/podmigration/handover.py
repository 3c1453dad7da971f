"""StatefulSet hand-over: which pods the mutating webhook turns into restores, and what it makes of them.

The webhook configuration (chart: <release>-statefulset-handover) matches no pod until a migration lists its pod
here; its match condition is rebuilt from every unfinished migration that recorded ``status.handover`` (so the
list is the same whichever migration rebuilds it, and an operator restart loses nothing).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from . import api, phases, podspec, volumes

Obj = dict[str, Any]

#: Serialises the rebuilds of this process's migrations (each reads every migration, then writes the list).
SYNC_LOCK = threading.Lock()


def handed_over(migrations: list[Obj]) -> list[tuple[str, str]]:
    """(namespace, pod) of every unfinished migration whose pod is being recreated by its owner."""
    return sorted({(m["metadata"]["namespace"], m["status"]["handover"]["pod"]) for m in migrations
                   if ((m.get("status") or {}).get("handover") or {}).get("pod")
                   and not phases.is_terminal(m["status"].get("phase"))})


def match_expression(pods: list[tuple[str, str]]) -> str:
    """CEL for the webhook's match condition: true exactly for those pods' creation."""
    if not pods:
        return "false"
    names = ", ".join(f"'{namespace}/{name}'" for namespace, name in pods)
    return f"(object.metadata.namespace + '/' + object.metadata.name) in [{names}]"


def migration_for(pod_name: str, migrations: list[Obj]) -> Obj | None:
    return next((m for m in migrations if ((m.get("status") or {}).get("handover") or {}).get("pod") == pod_name
                 and not phases.is_terminal(m["status"].get("phase"))), None)


def restore_of(pod: Obj, migration: Obj, image: str) -> Obj:
    """The owner's new pod turned into this migration's restore: same identity, checkpoint images, the target."""
    status = migration["status"]
    restored = copy.deepcopy(pod)
    annotations = restored["metadata"].setdefault("annotations", {})
    annotations[api.MIGRATION_ANNOTATION] = migration["metadata"]["name"]
    annotations[api.MIGRATED_FROM_ANNOTATION] = pod["metadata"]["name"]
    restored["spec"] = podspec.restore_spec(pod["spec"], migration_uid=migration["metadata"]["uid"],
                                            target_node=status["targetNode"])
    if status.get("volumes"):
        volumes.add_volumes_gate(restored, pod, image)
    return restored
