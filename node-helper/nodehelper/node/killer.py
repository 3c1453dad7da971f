"""Kills every process of a pod's containers without letting any of them run user code again.

The cgroups are frozen first and SIGKILL is sent while they are frozen: the signal stays pending, and once it is
queued the kernel marks the thread group as exiting, so a SIGTERM the kubelet sends later is discarded and the task
dies on thaw before any handler could run. The pids are host pids (the DaemonSet runs with hostPID)."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from nodehelper.errors import HelperError, NotFound
from nodehelper.node import cgroups
from nodehelper.node.freezer import Freezer

log = logging.getLogger(__name__)


class Killer:
    def __init__(self, freezer: Freezer, timeout: float = 10.0, send: Callable[[int, int], None] = os.kill) -> None:
        self.freezer = freezer
        self.timeout = timeout
        self.send = send

    def kill(self, pod_uid: str, thaw: bool = True) -> int:
        """Returns how many processes were sent SIGKILL; 0 when none (or no cgroup) is left, so it is idempotent.

        ``thaw=False`` leaves them frozen with the kill pending (they die at the next thaw, whoever thaws): the
        operator deletes the pod in between, so that the kubelet, which never restarts a container of a deleted
        pod, takes their death for the end it asked for."""
        cgroup_dirs = [cgroup for cgroup, _ in self.freezer.container_cgroups(pod_uid)]
        if not cgroup_dirs:
            return 0
        try:
            self.freezer.freeze(pod_uid)
        except NotFound:  # the containers went away in between
            return 0
        killed = 0
        try:
            for cgroup in cgroup_dirs:
                for pid in cgroups.processes(cgroup):
                    try:
                        self.send(pid, signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
        finally:
            if thaw:
                try:
                    self.freezer.thaw(pod_uid)
                except NotFound:
                    pass
        if thaw:
            self._wait_empty(pod_uid, cgroup_dirs)
        return killed

    def _wait_empty(self, pod_uid: str, cgroup_dirs: list[Path]) -> None:
        deadline = time.monotonic() + self.timeout
        while left := {str(c): pids for c in cgroup_dirs if (pids := cgroups.processes(c))}:
            if time.monotonic() > deadline:
                raise HelperError(f"processes of pod {pod_uid} still alive {self.timeout}s after SIGKILL: {left}")
            time.sleep(0.02)
