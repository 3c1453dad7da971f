"""The workloads migrated: the counter, script pods writing sequences into emptyDirs, owned pods, pod watches."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

from kubernetes import client, watch

from .cluster import COUNTER_IMAGE, NAMESPACE, SOURCE_NODE, TARGET_NODE, describe_state, node_exec, wait_for


def counter_pod(
    name: str, node: str, containers: dict[str, int] | None = None, image: str = COUNTER_IMAGE, ballast_mb: int = 0
) -> dict[str, Any]:
    """A BestEffort pod of in-memory counters (container name -> TCP port) pinned to a node; `ballast_mb` more
    memory per counter (Guaranteed pods cannot run on these machines, see e2e/README.md)."""
    containers = containers or {"counter": 8080}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": cname,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [
                        {"name": "COUNTER_PORT", "value": str(port)},
                        {"name": "COUNTER_NAME", "value": cname},
                        {"name": "COUNTER_BALLAST_MB", "value": str(ballast_mb)},
                    ],
                    "ports": [{"containerPort": port}],
                }
                for cname, port in containers.items()
            ],
        },
    }


def read_counter(ip: str, port: int = 8080, timeout: float = 30) -> dict[str, Any]:
    """One reading of a counter through its TCP service; retried while the service is not reachable yet."""

    def probe() -> dict[str, Any] | None:
        try:
            with socket.create_connection((ip, port), timeout=2) as conn:
                return json.loads(conn.makefile().readline())
        except (OSError, ValueError):
            return None

    return wait_for(f"counter at {ip}:{port}", probe, timeout)


# --- Workloads with open connections and volumes (e2e/images: pm-redis, seqwriter.py, linkclient.py) ---------------


def script_pod(
    name: str, node: str, script: str, env: dict[str, str] | None = None, port: int = 8080, grace: int = 1
) -> dict[str, Any]:
    """A BestEffort pod running /app/<script>.py of the workload image (seqwriter, linkclient, counter) as its one
    container `app`, pinned to a node."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": grace,
            "containers": [
                {
                    "name": "app",
                    "image": COUNTER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-u", f"/app/{script}.py"],
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                    "ports": [{"containerPort": port}],
                }
            ],
        },
    }


def seqwriter_pod(
    name: str, node: str, medium: str = "", tick: float = 0.05, grace: int = 30, access: str = "wronly"
) -> dict[str, Any]:
    """A seqwriter whose file is /data/seq.txt in the emptyDir `data` (medium "" = node disk, "Memory" = tmpfs),
    opened O_WRONLY|O_APPEND like a log (access="rdwr": O_RDWR|O_APPEND). Its grace period is long on purpose: a
    graceful stop always gives its SIGTERM handler time to leave a trace."""
    spec = script_pod(
        name, node, "seqwriter", {"SEQ_FILE": "/data/seq.txt", "SEQ_TICK": str(tick), "SEQ_OPEN": access}, grace=grace
    )
    spec["spec"]["volumes"] = [{"name": "data", "emptyDir": {"medium": medium} if medium else {}}]
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return spec


def emptydir_file(node: str, pod_uid: str, volume: str, path: str) -> bytes:
    """A file of a pod's emptyDir as the node holds it (disk or tmpfs: both are mounted at the same place)."""
    return node_exec(node, "cat", f"/var/lib/kubelet/pods/{pod_uid}/volumes/kubernetes.io~empty-dir/{volume}/{path}")


def check_sequence(data: bytes, context: Any = None) -> int:
    """The seqwriter file holds every number from 1 to its last exactly once, in order (no gap, no duplicate, no
    SIGTERM trace); returns the last number. A partly written last line is ignored (the writer may be mid-write).
    `context` (e.g. the PodMigration's status.volumes) goes into the failure messages."""
    lines = data.decode().split("\n")
    complete = lines[:-1]  # after the last newline: empty or a line being written
    assert "SIGTERM" not in complete, (
        f"the seqwriter's SIGTERM handler ran on this file (a graceful stop, not a kill); {context}"
    )
    numbers = [int(line) for line in complete]
    bad = [(i + 1, n) for i, n in enumerate(numbers) if n != i + 1]
    assert not bad, (
        f"{len(numbers)} lines, first out of sequence at line {bad[0][0]}: {bad[0][1]} "
        f"(around: {numbers[max(0, bad[0][0] - 4) : bad[0][0] + 3]}); {context}"
    )
    assert numbers, f"the file is empty; {context}"
    return numbers[-1]


class PodWatch(threading.Thread):
    """Watches one pod, from before a migration until the pod is deleted: `statuses` is the last containerStatuses
    seen (the DELETED event's included), so the final state of a source's containers can be read after it is gone.
    The constructor returns once the watch has seen the pod."""

    def __init__(self, core: client.CoreV1Api, name: str) -> None:
        super().__init__(daemon=True, name=f"watch-{name}")
        self.core, self.pod = core, name
        self.statuses: list[client.V1ContainerStatus] = []
        self.history: list[str] = []  # one line per event: type, phase, each container's state
        self.deleted = threading.Event()
        self._seen = threading.Event()
        self._watch = watch.Watch()
        self.start()
        assert self._seen.wait(30), f"the watch of pod {name} saw nothing in 30 s"

    def run(self) -> None:
        version = None
        while not self.deleted.is_set():
            kwargs = {"resource_version": version} if version else {}
            for event in self._watch.stream(
                self.core.list_namespaced_pod,
                NAMESPACE,
                timeout_seconds=60,
                field_selector=f"metadata.name={self.pod}",
                **kwargs,
            ):
                pod = event["object"]
                version = pod.metadata.resource_version
                self.statuses = pod.status.container_statuses or self.statuses
                self.history.append(
                    f"{event['type']} {pod.status.phase} "
                    + ", ".join(f"{s.name}={describe_state(s.state)}" for s in pod.status.container_statuses or [])
                )
                self._seen.set()
                if event["type"] == "DELETED":
                    self.deleted.set()
                    self._watch.stop()
                    return

    def final_statuses(self, timeout: float = 90) -> list[client.V1ContainerStatus]:
        """The last containerStatuses seen once the pod is deleted."""
        assert self.deleted.wait(timeout), f"pod {self.pod} not deleted within {timeout:.0f}s: {self.history[-3:]}"
        return self.statuses

    def close(self) -> None:
        self._watch.stop()


def counter_template(app: str, node: str = SOURCE_NODE) -> dict[str, Any]:
    """A pod template of the counter (its answer names the pod's hostname) that prefers `node`."""
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "counter",
                "image": COUNTER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            }
        ],
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "preference": {
                            "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
                        },
                    }
                ]
            }
        },
    }
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def pods_of(core: client.CoreV1Api, app: str) -> list[client.V1Pod]:
    return [
        p
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items
        if not p.metadata.deletion_timestamp
    ]


def no_pods_left(core: client.CoreV1Api, app: str) -> None:
    """The next test starts from a namespace without this test's pods (owners delete theirs asynchronously)."""
    wait_for(
        f"the pods of {app} deleted",
        lambda: not core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items,
        timeout=120,
    )


@contextlib.contextmanager
def placed_on_source(core: client.CoreV1Api, apps: list[str]) -> Iterator[None]:
    """Pods created inside land on SOURCE_NODE: TARGET_NODE is cordoned until every pod of ``apps`` (labels
    app=<name>) is bound, since the scheduler's spreading may outweigh a preference."""
    core.patch_node(TARGET_NODE, {"spec": {"unschedulable": True}})
    try:
        yield
        wait_for(
            "the new pods bound to a node",
            lambda: all(pods_of(core, app) and all(p.spec.node_name for p in pods_of(core, app)) for app in apps),
        )
    finally:
        core.patch_node(TARGET_NODE, {"spec": {"unschedulable": None}})
