"""PodMigrations: start, read and wait for them; checkpoint images; readiness gates; rollback checks."""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cluster import (
    GROUP,
    NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TERMINAL,
    VERSION,
    EndpointWatch,
    node_exec,
    running_pod,
    wait_for,
)
from .remains import nothing_left_on_nodes
from .workloads import counter_pod, read_counter


def start_migration(
    custom: client.CustomObjectsApi,
    pod: str,
    target: str | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> str:
    """Creates a PodMigration for `pod` and returns its name."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PodMigration",
        "metadata": {"generateName": f"{pod}-", "annotations": annotations or {}},
        "spec": {"podName": pod, **spec},
    }
    if target:
        body["spec"]["targetNode"] = target
    return custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)["metadata"]["name"]


def read_migration(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    """The PodMigration, or None once it is gone."""
    try:
        return custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def checkpoint_image(node: str, archive: bytes, image: str) -> None:
    """Makes a kubelet checkpoint archive into an image on `node`, as the Kubernetes checkpoint docs do by hand
    (buildah, the CRI-O checkpoint annotation): what a user or an attacker's registry could hand a pod."""
    tar = f"/tmp/{image.rsplit(':', 1)[-1]}-{time.monotonic_ns()}.tar"
    node_exec(node, "sh", "-c", f"umask 077 && cat > {tar}", stdin=archive)
    node_exec(
        node,
        "sh",
        "-euc",
        f"""
        c=$(buildah from scratch)
        buildah add -q $c {tar} /
        buildah config --annotation=io.kubernetes.cri-o.annotations.checkpoint.name=counter $c
        buildah commit -q --rm $c {image} >/dev/null
        rm -f {tar}""",
    )


def finished_migration(custom: client.CustomObjectsApi, name: str, timeout: float = 240) -> dict[str, Any]:
    """Waits for the PodMigration to reach a terminal phase and returns it."""

    def probe() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        return obj if obj.get("status", {}).get("phase") in TERMINAL else None

    return wait_for(f"PodMigration {name} to finish", probe, timeout)


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


def assert_rolled_back(
    core: client.CoreV1Api,
    status: dict,
    pod: client.V1Pod,
    before: dict,
    outcome: tuple[str, str] = ("Failed", "Timeout"),
    endpoints: EndpointWatch | None = None,
) -> None:
    """The migration ended in `outcome` (phase, reason) after Transferring and the source is as it was: same pod,
    labels back, thawed, the same process, no replacement, nothing left on the nodes. Given the `endpoints` of a
    Service of the pod, watched since before the migration: the pod was out of them while fenced, and is back."""
    assert (status["phase"], status["reason"]) == outcome, status
    assert "Transferring" in [p["phase"] for p in status["phaseTransitions"]], status["phaseTransitions"]
    name = pod.metadata.name
    after = core.read_namespaced_pod(name, NAMESPACE)
    assert (after.metadata.uid, after.spec.node_name) == (pod.metadata.uid, SOURCE_NODE)
    assert after.metadata.labels == pod.metadata.labels, "the source is still fenced out of its Services"
    if endpoints is not None:
        ip = pod.status.pod_ip
        wait_for(f"{name} back in its Service's endpoints", lambda: ip in endpoints.seen[-1], timeout=60)
        seen = endpoints.stop()
        assert ip in seen[0] and any(ip not in s for s in seen), f"{name} never left its Service's endpoints: {seen}"
    first = read_counter(pod.status.pod_ip)
    wait_for(
        "the source counter to move on (thawed)", lambda: read_counter(pod.status.pod_ip)["count"] > first["count"]
    )
    assert first["token"] == before["token"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items] == [name]
    # Scoped to this pod and its migrations (their archives and images are named by the migration's uid).
    migrations = [
        m["metadata"]["uid"]
        for m in client.CustomObjectsApi(core.api_client).list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL
        )["items"]
        if m["spec"]["podName"] == name
    ]
    nothing_left_on_nodes(core, pod.metadata.uid, status.get("targetPod") or pod.metadata.uid, *migrations)


READY_GATE = "podmigration.dev/e2e-ready"


def gate_readiness(spec: dict[str, Any]) -> dict[str, Any]:
    """Adds the readiness gate READY_GATE to a pod spec: the pod is Ready only once open_gate() set its condition.
    A replacement pod copies the gate but nobody opens it there, so a migration of such a pod reaches Restoring and
    times out while the source (gate open) stays Ready and behind its Services (unlike a slow readinessProbe, which
    keeps the source out of its Services too)."""
    spec["spec"]["readinessGates"] = [{"conditionType": READY_GATE}]
    return spec


def open_gate(core: client.CoreV1Api, name: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(
        name, NAMESPACE, {"status": {"conditions": [{"type": READY_GATE, "status": "True", "lastTransitionTime": now}]}}
    )
