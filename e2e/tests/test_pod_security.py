"""Pod Security "restricted": a pod that meets it, with an emptyDir volume, in a namespace that enforces it, keeps
being admitted when it migrates: its replacement carries the operator's volume gate (an init container), which must
meet the level too (operator/podmigration/volumes.py, RESTRICTED)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from e2elib import (
    COUNTER_IMAGE,
    GROUP,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    read_counter,
    wait_for,
)
from kubernetes.client.exceptions import ApiException

from podmigration import api
from podmigration.domain import podspec, volumes

RESTRICTED_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture
def restricted_namespace(core, unique):
    name = f"pm-restricted-{unique}"
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    yield name
    core.delete_namespace(name, grace_period_seconds=0)


def restricted_counter(name: str) -> dict:
    pod = counter_pod(name, SOURCE_NODE)
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    for container in pod["spec"]["containers"]:
        container["securityContext"] = copy.deepcopy(RESTRICTED_CONTEXT)
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return pod


def admitted(core, namespace: str, pod: dict) -> str:
    """'' when the API server would create the pod (server-side dry run), else its refusal."""
    try:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
        return ""
    except ApiException as exc:
        return exc.body or str(exc)


def test_the_replacement_with_its_volume_gate_is_admitted_under_restricted(core, restricted_namespace, unique):
    source = restricted_counter(f"ps-{unique}")
    source["metadata"]["namespace"] = restricted_namespace
    assert admitted(core, restricted_namespace, source) == ""
    replacement = podspec.replacement_pod(
        source, migration_name=f"ps-{unique}", migration_uid=f"uid-{unique}", target_node=TARGET_NODE
    )
    volumes.add_volumes_gate(replacement, source, COUNTER_IMAGE)
    # As the API server's Pod Security sees it: the checkpoint images and our annotations are for the pod guard
    # (admission.yaml), which lets only the operator create such pods; the gate is what is judged here.
    for container in replacement["spec"]["containers"]:
        container["image"] = COUNTER_IMAGE
    replacement["metadata"]["annotations"] = {}
    assert admitted(core, restricted_namespace, replacement) == ""
    del replacement["spec"]["initContainers"][0]["securityContext"]
    assert "violates PodSecurity" in admitted(core, restricted_namespace, replacement)


def cannot_dump_non_root_here() -> bool:
    """No CAP_SYS_RESOURCE (ENVIRONMENT.md): CRIU cannot dump a process whose uid is not root's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) & (1 << 24)
    return False


@pytest.mark.skipif(
    cannot_dump_non_root_here(),
    reason="this machine lacks CAP_SYS_RESOURCE: CRIU cannot checkpoint a non-root process, which restricted requires",
)
def test_a_pod_in_a_restricted_namespace_migrates(core, custom, restricted_namespace, unique):
    name = f"ps-{unique}"
    core.create_namespaced_pod(restricted_namespace, restricted_counter(name))
    wait_for(f"pod {name} ready", lambda: _ready_ip(core, restricted_namespace, name))
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PodMigration", "metadata": {"name": name}}
    body["spec"] = {"podName": name, "targetNode": TARGET_NODE}
    custom.create_namespaced_custom_object(GROUP, VERSION, restricted_namespace, PLURAL, body)
    done = wait_for(
        f"PodMigration {name} to finish",
        lambda: (lambda m: m if (m.get("status") or {}).get("phase") in {"Succeeded", "Failed", "Cancelled"} else None)(
            custom.get_namespaced_custom_object(GROUP, VERSION, restricted_namespace, PLURAL, name)
        ),
        timeout=240,
    )
    assert done["status"]["phase"] == "Succeeded", done["status"]
    (moved,) = [
        p
        for p in core.list_namespaced_pod(restricted_namespace, label_selector=f"app={name}").items
        if (p.metadata.annotations or {}).get(api.MIGRATION_ANNOTATION) == name
    ]
    assert moved.spec.node_name == TARGET_NODE
    assert read_counter(_ready_ip(core, restricted_namespace, moved.metadata.name))["count"] > 0


def _ready_ip(core, namespace: str, name: str) -> str | None:
    pod = core.read_namespaced_pod(name, namespace)
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return pod.status.pod_ip if ready else None
