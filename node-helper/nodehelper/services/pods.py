"""What the endpoints that act on a pod do (network cut, kill, memory, emptyDir copy): validate, act, log one line."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from nodehelper import validation
from nodehelper.errors import BadRequest
from nodehelper.node import cgroups
from nodehelper.node.killer import Killer
from nodehelper.node.netcut import NetworkCut
from nodehelper.node.volumes import EmptyDirs
from nodehelper.runtime.containers import Containers
from nodehelper.store.archives import ArchiveStore
from pmcontract.bodies import KillAnswer, MemoryAnswer, NetworkAnswer

log = logging.getLogger(__name__)


class PodApi:
    """What the endpoints that act on a pod act through (the functions here and in volumes.py take it); tests swap
    a dependency by assigning it."""

    def __init__(
        self,
        store: ArchiveStore,
        containers: Containers,
        netcut: NetworkCut,
        killer: Killer,
        empty_dirs: EmptyDirs,
        cgroup_root: Path,
    ) -> None:
        self.store = store
        self.containers = containers
        self.netcut = netcut
        self.killer = killer
        self.empty_dirs = empty_dirs
        self.cgroup_root = cgroup_root


def cut_network(p: PodApi, body: dict[str, Any]) -> NetworkAnswer:
    return _set_network(p, body, cut=True)


def restore_network(p: PodApi, body: dict[str, Any]) -> NetworkAnswer:
    return _set_network(p, body, cut=False)


def _set_network(p: PodApi, body: dict[str, Any], cut: bool) -> NetworkAnswer:
    uid = validation.pod_uid(validation.field(body, "podUID"))
    netns = p.containers.sandbox_netns(uid)
    families = (p.netcut.cut if cut else p.netcut.restore)(netns)
    what = "cut" if cut else "restored"
    log.info("%s the network of pod %s (netns %s, %s)", what, uid, netns.name, "+".join(families) or "gone")
    return {"cut": cut}


def kill(p: PodApi, body: dict[str, Any]) -> KillAnswer:
    uid = validation.pod_uid(validation.field(body, "podUID"))
    started = time.monotonic()
    thaw = body.get("thaw", True)
    if not isinstance(thaw, bool):
        raise BadRequest("thaw must be true or false")
    killed = p.killer.kill(uid, thaw=thaw)
    log.info(
        "killed pod %s: %d processes in %.3fs%s",
        uid,
        killed,
        time.monotonic() - started,
        "" if thaw else " (left frozen: they die at the thaw)",
    )
    return {"killed": killed}


def memory(p: PodApi, pod_uid: str) -> MemoryAnswer:
    return {"bytes": cgroups.pod_memory_bytes(p.cgroup_root, validation.pod_uid(pod_uid))}
