"""The volume gate the operator adds to a replacement passes Pod Security "restricted" (the checks of
https://kubernetes.io/docs/concepts/security/pod-security-standards/ that concern a container and its volumes), so a
pod in a namespace that enforces it can migrate."""

from __future__ import annotations

from podmigration import api
from podmigration.domain import volumes


def restricted_violations(pod: dict) -> list[str]:
    spec, found = pod["spec"], []
    pod_context = spec.get("securityContext") or {}
    for container in spec.get("initContainers", []) + spec["containers"]:
        context, name = container.get("securityContext") or {}, container["name"]
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation not false")
        if "ALL" not in (context.get("capabilities") or {}).get("drop", []):
            found.append(f"{name}: capabilities not dropped")
        if set((context.get("capabilities") or {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities added")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as root")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccomp {seccomp}")
    found += [f"volume {v['name']}: hostPath" for v in spec.get("volumes", []) if "hostPath" in v]
    return found


def test_the_volume_gate_passes_restricted():
    source = {"spec": {"containers": [{"name": "app"}], "volumes": [{"name": "data", "emptyDir": {}}]}}
    replacement = {"spec": {"containers": [], "volumes": [{"name": "data", "emptyDir": {}}]}}
    volumes.add_volumes_gate(replacement, source, "localhost/podmigration:abc")
    (gate,) = replacement["spec"]["initContainers"]
    assert gate["name"] == api.VOLUMES_GATE_CONTAINER
    assert restricted_violations(replacement) == []


def test_the_checker_sees_a_container_without_a_security_context():
    assert restricted_violations({"spec": {"containers": [{"name": "app"}]}})
