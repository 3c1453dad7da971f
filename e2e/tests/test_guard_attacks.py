"""Attacks on pod-guard that it did not cover: pods/status writes metadata too, and an ephemeral container added
to a pod being moved runs unfrozen beside the checkpoint, the volume copy or the restore (docs/security.md).
The first two use pods pinned to no node; the last moves a real pod and acts while it is paused in Restoring."""

from __future__ import annotations

from e2elib import (
    GROUP,
    NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    finished_migration,
    running_pod,
    start_migration,
    wait_for,
)
from kubernetes import client
from test_admission import OPERATOR, as_user, denied, namespace, pod  # noqa: F401  (namespace: a fixture)

PAUSE_AT, PAUSED_AT = "podmigration.dev/test-pause-at", "podmigration.dev/test-paused-at"


def debug(core: client.CoreV1Api, name: str, namespace: str, container: str) -> None:
    """Adds an ephemeral container, as `kubectl debug` does (a strategic merge by name keeps the others)."""
    core.patch_namespaced_pod_ephemeralcontainers(
        name,
        namespace,
        {
            "spec": {
                "ephemeralContainers": [
                    {"name": container, "image": "localhost/pm-counter:e2e", "command": ["python3", "-c", "input()"]}
                ]
            }
        },
    )


def test_pods_status_cannot_set_podmigration_annotations(api, core, namespace):
    """A service account that may patch pods/status (as node agents and many controllers may) cannot forge the
    operator's annotations through it, e.g. held-labels that the hand-over would put back on the pod as labels."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "status"},
            "rules": [{"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get", "patch", "update"]}],
        },
    )
    user = f"system:serviceaccount:{namespace}:status-writer"
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "status"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "status"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    core.create_namespaced_pod(namespace, pod("victim"))
    writer = client.CoreV1Api(as_user(api, user))
    forged = {"metadata": {"annotations": {"podmigration.dev/held-labels": '{"role": "primary"}'}}}
    message = wait_for("the role to apply", lambda: _status_refusal(writer, namespace, forged), timeout=30)
    assert "only the podmigration operator may set, change or remove podmigration.dev/ annotations" in message
    assert "podmigration.dev/held-labels" in message
    assert "podmigration.dev/held-labels" in denied(core.patch_namespaced_pod_status, "victim", namespace, forged)
    assert "podmigration.dev/held-labels" not in (
        core.read_namespaced_pod("victim", namespace).metadata.annotations or {}
    )
    # Everything else pods/status may write stays allowed.
    writer.patch_namespaced_pod_status("victim", namespace, {"metadata": {"annotations": {"example.com/x": "1"}}})


def _status_refusal(writer: client.CoreV1Api, namespace: str, body: dict) -> str | None:
    """The pod-guard's refusal; None while RBAC still answers (a new Role takes a moment to apply)."""
    try:
        writer.patch_namespaced_pod_status("victim", namespace, body)
    except client.ApiException as exc:
        assert exc.status == 403, exc.body
        return exc.body if "podmigration" in exc.body else None
    raise AssertionError("pods/status set a podmigration.dev/ annotation")


def test_no_ephemeral_container_on_a_fenced_pod(api, core, namespace):
    core.create_namespaced_pod(namespace, pod("victim"))
    debug(core, "victim", namespace, "before")  # an ordinary pod may be debugged
    client.CoreV1Api(as_user(api, OPERATOR)).patch_namespaced_pod(
        "victim", namespace, {"metadata": {"annotations": {"podmigration.dev/fenced-by": "move-victim"}}}
    )
    message = denied(debug, core, "victim", namespace, "during")
    assert "is fenced by PodMigration move-victim" in message and "no ephemeral container" in message
    assert [c.name for c in core.read_namespaced_pod("victim", namespace).spec.ephemeral_containers] == ["before"]


def test_no_ephemeral_container_on_either_pod_of_a_migration_until_it_ended(core, custom, pods, unique):
    """A real move paused right after the replacement was created: neither the fenced source nor the replacement
    being restored takes an ephemeral container; once the migration succeeded the replacement does."""
    source = f"guard-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)
    running_pod(core, source)
    name = start_migration(custom, source, TARGET_NODE, annotations={PAUSE_AT: "replacement-created"})
    wait_for(
        f"PodMigration {name} paused in Restoring",
        lambda: (
            m
            if (m := custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name))["metadata"]
            .get("annotations", {})
            .get(PAUSED_AT)
            == "replacement-created"
            else None
        ),
        timeout=180,
        interval=0.2,
    )
    target = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)["status"]["targetPod"]
    try:
        assert f"is fenced by PodMigration {name}" in denied(debug, core, source, NAMESPACE, "peek")
        assert f"is being restored by PodMigration {name}" in denied(debug, core, target, NAMESPACE, "peek")
    finally:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, {"metadata": {"annotations": {PAUSE_AT: None}}}
        )
    assert finished_migration(custom, name)["status"]["phase"] == "Succeeded"
    debug(core, target, NAMESPACE, "after")
