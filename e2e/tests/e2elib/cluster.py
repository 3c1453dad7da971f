"""The cluster from KUBECONFIG and the e2e environment: names, a way into its nodes, waiting, the operator."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client

REPO = Path(__file__).resolve().parents[3]
NODE_EXEC = os.environ.get("PM_E2E_NODE_EXEC", f"{REPO}/e2e/cluster/node-exec {{node}}")
SOURCE_NODE, TARGET_NODE = os.environ.get("PM_E2E_NODES", "worker-1,worker-2").split(",")
COUNTER_IMAGE = os.environ.get("PM_E2E_COUNTER_IMAGE", "localhost/pm-counter:e2e")
REDIS_IMAGE = os.environ.get("PM_E2E_REDIS_IMAGE", "localhost/pm-redis:e2e")
NAMESPACE = os.environ.get("PM_E2E_NAMESPACE", "default")
OPERATOR_NAMESPACE = os.environ.get("PM_E2E_OPERATOR_NAMESPACE", "podmigration-system")
GROUP, VERSION, PLURAL = "podmigration.dev", "v1alpha1", "podmigrations"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}
# The node-helper's archive store (chart value nodeHelper.workDir, inside the kubelet's checkpoint directory).
ARCHIVES = "/var/lib/kubelet/checkpoints/podmigration/archives"
#: The helper's work directory (the chart's nodeHelper.workDir), inside the kubelet's checkpoint directory.
WORK_DIR = ARCHIVES.rsplit("/", 1)[0]


def node_exec(node: str, *cmd: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Runs a command inside a node (PM_E2E_NODE_EXEC, `{node}` replaced) and returns its stdout."""
    argv = shlex.split(NODE_EXEC.format(node=node)) + list(cmd)
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout


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


def pod_gone(core: client.CoreV1Api, name: str, timeout: float = 90) -> None:
    wait_for(
        f"pod {name} deleted",
        lambda: name not in {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items},
        timeout,
    )


def create_service(core: client.CoreV1Api, name: str, port: int, target_port: int | None = None) -> str:
    """A ClusterIP Service `name` selecting app=<name>; returns its cluster IP."""
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1ServiceSpec(
            selector={"app": name}, ports=[client.V1ServicePort(port=port, target_port=target_port or port)]
        ),
    )
    return core.create_namespaced_service(NAMESPACE, service).spec.cluster_ip


def describe_state(state: client.V1ContainerState | None) -> str:
    if state is None:
        return "?"
    if state.terminated:
        return f"terminated(exitCode={state.terminated.exit_code}, reason={state.terminated.reason})"
    if state.running:
        return "running"
    return f"waiting({state.waiting.reason if state.waiting else ''})"


OPERATOR_SELECTOR = "app.kubernetes.io/name=podmigration-operator"


def set_operator_env(**env: str) -> None:
    """Sets the operator's environment (one rollout) and waits until every replica runs with it."""
    for cmd in (
        ["set", "env", "deploy/podmigration-operator", *(f"{k}={v}" for k, v in env.items())],
        ["rollout", "status", "deploy/podmigration-operator", "--timeout=120s"],
    ):
        subprocess.run(["kubectl", "-n", OPERATOR_NAMESPACE, *cmd], check=True, capture_output=True, timeout=150)


@contextlib.contextmanager
def operator_env(**env: str) -> Iterator[None]:
    """The operator with ``env`` for the block, then with the values it had (a rollout each way when it changes)."""
    deployment = subprocess.run(
        ["kubectl", "-n", OPERATOR_NAMESPACE, "get", "deploy/podmigration-operator", "-o", "json"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    container = json.loads(deployment.stdout)["spec"]["template"]["spec"]["containers"][0]
    before = {e["name"]: e.get("value", "") for e in container.get("env") or []}
    set_operator_env(**env)
    try:
        yield
    finally:
        set_operator_env(**{k: before.get(k, "") for k in env})


def operator_pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    return [
        p
        for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
        if not p.metadata.deletion_timestamp
    ]


def operator_leader(
    custom: client.CustomObjectsApi, replicas: list[client.V1Pod], peering: str = "podmigration", timeout: float = 60
) -> str:
    """The name of the replica that leads: of the live replicas' peering records, the highest priority."""
    names = {p.metadata.name for p in replicas}

    def leader() -> str | None:
        live = [(priority, name) for priority, name in peers(custom, peering) if name in names]
        return max(live)[1] if live else None

    return wait_for("a leading operator replica", leader, timeout=timeout)


def peers(custom: client.CustomObjectsApi, peering: str = "podmigration") -> list[tuple[int, str]]:
    """(priority, pod name) of every record in the kopf peering object; a live peer removes a dead one's."""
    records = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering).get("status") or {}
    return [
        (v.get("priority", 0), k.split("@", 1)[-1].split("/", 1)[0]) for k, v in records.items() if isinstance(v, dict)
    ]


def service_endpoints(api_client: client.ApiClient, service: str) -> set[str]:
    """The pod IPs the Service's EndpointSlices list (ready or not): a pod fenced out of the Service is not among
    them."""
    slices = (
        client.DiscoveryV1Api(api_client)
        .list_namespaced_endpoint_slice(NAMESPACE, label_selector=f"kubernetes.io/service-name={service}")
        .items
    )
    return {address for s in slices for e in s.endpoints or [] for address in e.addresses or []}


class EndpointWatch(threading.Thread):
    """Polls the pod IPs of a Service's EndpointSlices (service_endpoints) from its start until stop(): `seen` holds
    each set that differs from the one before (a fence of a few seconds shows as a set without the pod)."""

    def __init__(self, api_client: client.ApiClient, service: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name=f"endpoints-{service}")
        self.api_client, self.service, self.interval = api_client, service, interval
        self.seen: list[set[str]] = [service_endpoints(api_client, service)]
        self.error: BaseException | None = None
        self._stop_flag = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            while not self._stop_flag.wait(self.interval):
                current = service_endpoints(self.api_client, self.service)
                if current != self.seen[-1]:
                    self.seen.append(current)
        except Exception as exc:
            self.error = exc

    def stop(self) -> list[set[str]]:
        self._stop_flag.set()
        self.join(10)
        assert self.error is None, f"watching the endpoints of {self.service} failed: {self.error!r}"
        return self.seen
