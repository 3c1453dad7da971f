"""Helpers of the end-to-end suite and the benchmark: the cluster from KUBECONFIG, a way into its nodes, counters."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
NODE_EXEC = os.environ.get("PM_E2E_NODE_EXEC", f"{REPO}/e2e/cluster/node-exec {{node}}")
SOURCE_NODE, TARGET_NODE = os.environ.get("PM_E2E_NODES", "worker-1,worker-2").split(",")
COUNTER_IMAGE = os.environ.get("PM_E2E_COUNTER_IMAGE", "localhost/pm-counter:e2e")
NAMESPACE = os.environ.get("PM_E2E_NAMESPACE", "default")
OPERATOR_NAMESPACE = os.environ.get("PM_E2E_OPERATOR_NAMESPACE", "podmigration-system")
GROUP, VERSION, PLURAL = "podmigration.dev", "v1alpha1", "podmigrations"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def node_exec(node: str, *cmd: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Runs a command inside a node (PM_E2E_NODE_EXEC, `{node}` replaced) and returns its stdout."""
    argv = shlex.split(NODE_EXEC.format(node=node)) + list(cmd)
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout


def counter_pod(name: str, node: str, containers: dict[str, int] | None = None, image: str = COUNTER_IMAGE,
                ballast_mb: int = 0) -> dict[str, Any]:
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
                    "env": [{"name": "COUNTER_PORT", "value": str(port)}, {"name": "COUNTER_NAME", "value": cname},
                            {"name": "COUNTER_BALLAST_MB", "value": str(ballast_mb)}],
                    "ports": [{"containerPort": port}],
                }
                for cname, port in containers.items()
            ],
        },
    }


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    """Polls until probe() returns something truthy; fails with `what` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def running_pod(core: client.CoreV1Api, name: str, timeout: float = 120, ready: bool = True) -> client.V1Pod:
    """Waits until the pod is Running with every container started (and Ready, unless ready=False)."""
    def probe() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, NAMESPACE)
        if pod.status.phase in ("Failed", "Succeeded"):
            raise AssertionError(f"pod {name} ended: {pod.status}")
        statuses = pod.status.container_statuses or []
        started = statuses and all(s.ready or (not ready and s.state.running) for s in statuses)
        return pod if pod.status.phase == "Running" and started else None

    return wait_for(f"pod {name} Running{' and Ready' if ready else ''}", probe, timeout)


def read_counter(ip: str, port: int = 8080, timeout: float = 30) -> dict[str, Any]:
    """One reading of a counter through its TCP service; retried while the service is not reachable yet."""
    def probe() -> dict[str, Any] | None:
        try:
            with socket.create_connection((ip, port), timeout=2) as conn:
                return json.loads(conn.makefile().readline())
        except (OSError, ValueError):
            return None

    return wait_for(f"counter at {ip}:{port}", probe, timeout)


def start_migration(custom: client.CustomObjectsApi, pod: str, target: str | None = None, **spec: Any) -> str:
    """Creates a PodMigration for `pod` and returns its name."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PodMigration",
            "metadata": {"generateName": f"{pod}-"}, "spec": {"podName": pod, **spec}}
    if target:
        body["spec"]["targetNode"] = target
    return custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)["metadata"]["name"]


def finished_migration(custom: client.CustomObjectsApi, name: str, timeout: float = 240) -> dict[str, Any]:
    """Waits for the PodMigration to reach a terminal phase and returns it."""
    def probe() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        return obj if obj.get("status", {}).get("phase") in TERMINAL else None

    return wait_for(f"PodMigration {name} to finish", probe, timeout)


def leftovers(node: str) -> list[str]:
    """Checkpoint archives and checkpoint images a migration could leave on a node."""
    out = node_exec(node, "sh", "-c",
                    "ls /var/lib/podmigration/archives /var/lib/kubelet/checkpoints 2>/dev/null | grep -v ':$' || true;"
                    "buildah images --format '{{.Name}}' 2>/dev/null | grep podmigration-checkpoint || true")
    return [line for line in out.decode().split() if line]


def pod_gone(core: client.CoreV1Api, name: str, timeout: float = 90) -> None:
    wait_for(f"pod {name} deleted",
             lambda: name not in {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items}, timeout)


def restored_flags(node: str, pod: client.V1Pod) -> dict[str, bool]:
    """CRI-O's own word, per container, on whether it was restored from a checkpoint."""
    flags = {}
    for status in pod.status.container_statuses:
        info = json.loads(node_exec(node, "crictl", "inspect", status.container_id.split("://", 1)[1]))["info"]
        flags[status.name] = info.get("restored") is True
    return flags


def slow_to_be_ready(core: client.CoreV1Api, name: str) -> client.V1Pod:
    """A running counter whose replacement cannot become Ready for an hour: a migration of it reaches Restoring,
    then times out, so the rollback runs after the checkpoint, the transfer and the restore."""
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3600}
    core.create_namespaced_pod(NAMESPACE, spec)
    return running_pod(core, name, ready=False)


def assert_rolled_back(core: client.CoreV1Api, status: dict, pod: client.V1Pod, before: dict,
                       outcome: tuple[str, str] = ("Failed", "Timeout")) -> None:
    """The migration ended in `outcome` (phase, reason) after Transferring and the source is as it was: same pod,
    labels back, thawed, the same process, no replacement, nothing left on the nodes."""
    assert (status["phase"], status["reason"]) == outcome, status
    assert "Transferring" in [p["phase"] for p in status["phaseTransitions"]], status["phaseTransitions"]
    name = pod.metadata.name
    after = core.read_namespaced_pod(name, NAMESPACE)
    assert (after.metadata.uid, after.spec.node_name) == (pod.metadata.uid, SOURCE_NODE)
    assert after.metadata.labels == pod.metadata.labels, "the source is still fenced out of its Services"
    first = read_counter(pod.status.pod_ip)
    wait_for("the source counter to move on (thawed)", lambda: read_counter(pod.status.pod_ip)["count"] > first["count"])
    assert first["token"] == before["token"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items] == [name]
    assert leftovers(SOURCE_NODE) == [] and leftovers(TARGET_NODE) == []
