"""Admission: nobody but the operator gets a pod onto a checkpoint image or touches podmigration.dev/ annotations,
and a PodMigration needs its requester's own rights over the pod (charts/podmigration/templates/admission.yaml,
the handover-guard webhook; docs/security.md). The StatefulSet hand-over that the rules let through is
test_owners.py's; every pod here is pinned to no node, so nothing runs."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from e2elib import GROUP, OPERATOR_NAMESPACE, PLURAL, REPO, VERSION, wait_for
from kubernetes import client
from kubernetes.client.exceptions import ApiException

OPERATOR = f"system:serviceaccount:{OPERATOR_NAMESPACE}:podmigration-operator"
NOWHERE = {"nodeSelector": {"podmigration.dev/e2e": "nowhere"}}
PLAIN_IMAGE = "localhost/pm-counter:e2e"


def checkpoint_image(container: str = "counter") -> str:
    """A checkpoint image as a migration names it (`localhost/podmigration-checkpoint/<migration uid>-<container>`)."""
    return f"localhost/podmigration-checkpoint/{uuid.uuid4()}-{container}:latest"


def pod(name: str, image: str = PLAIN_IMAGE, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "counter", "image": image}], **NOWHERE, **spec},
    }


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """The API server's message refusing the call (403)."""
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    assert refused.value.status == 403, refused.value.body
    return refused.value.body


def as_user(api: client.ApiClient, user: str) -> client.ApiClient:
    """A client that impersonates `user` (the kubeconfig's admin may)."""
    impersonating = client.ApiClient(api.configuration)
    impersonating.set_default_header("Impersonate-User", user)
    return impersonating


@pytest.fixture
def namespace(core: client.CoreV1Api, unique: str) -> Iterator[str]:
    """A namespace of its own: the rules hold in every namespace, not only the migrations'."""
    name = f"pm-admission-{unique}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def user(api: client.ApiClient, namespace: str, unique: str) -> str:
    """A namespace user who may create PodMigrations and create, patch and debug pods, but not delete them."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = f"pm-e2e-{unique}"
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "migrator"},
            "rules": [
                {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create", "get", "list"]},
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/ephemeralcontainers"],
                    "verbs": ["get", "list", "create", "patch", "update"],
                },
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "migrator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "migrator"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        },
    )
    return name


def test_pod_naming_a_checkpoint_image_is_denied_in_any_namespace(core, namespace):
    message = denied(core.create_namespaced_pod, namespace, pod("steal", checkpoint_image()))
    assert "only the podmigration operator may create pods that use checkpoint images" in message
    for where in (
        {"initContainers": [{"name": "init", "image": checkpoint_image()}]},
        {"volumes": [{"name": "memory", "image": {"reference": checkpoint_image()}}]},
    ):
        assert "checkpoint images" in denied(core.create_namespaced_pod, namespace, pod("steal", **where))
    core.create_namespaced_pod(namespace, pod("plain"))  # the same pod on its own image is fine
    message = denied(
        core.patch_namespaced_pod_ephemeralcontainers,
        "plain",
        namespace,
        {"spec": {"ephemeralContainers": [{"name": "peek", "image": checkpoint_image()}]}},
    )
    assert "only the podmigration operator may point a pod at checkpoint images" in message
    assert "checkpoint images" in denied(
        core.patch_namespaced_pod,
        "plain",
        namespace,
        {"spec": {"containers": [{"name": "counter", "image": checkpoint_image()}]}},
    )


def test_statefulset_whose_template_names_a_checkpoint_image_gets_no_pod(api, core, namespace):
    """The StatefulSet controller may create a restore, but only the one a hand-over lists (handover-guard)."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "steal"},
            "spec": {
                "serviceName": "steal",
                "replicas": 1,
                "selector": {"matchLabels": {"app": "steal"}},
                "template": {"metadata": {"labels": {"app": "steal"}}, "spec": pod("", checkpoint_image())["spec"]},
            },
        },
    )

    def refused() -> str | None:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=steal").items
        return next((e.message for e in events if e.reason == "FailedCreate"), None)

    assert "no migration is handing it over" in wait_for("the StatefulSet's create refused", refused, timeout=60)
    assert core.list_namespaced_pod(namespace).items == []


def test_podmigration_needs_the_requesters_own_right_to_delete_the_pod(api, core, namespace, user):
    core.create_namespaced_pod(namespace, pod("victim"))
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PodMigration",
        "metadata": {"name": "move-victim"},
        "spec": {"podName": "victim"},
    }
    custom = client.CustomObjectsApi(as_user(api, user))
    message = denied(custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body)
    assert f"PodMigration of pod {namespace}/victim denied for {user}: creating it needs the right to delete" in message
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "deleter"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )

    def allowed() -> bool:
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")
        except ApiException as exc:
            assert exc.status == 403, exc.body
            return False
        return True

    wait_for("the PodMigration allowed once the user may delete the pod", allowed, timeout=30)


def test_pod_patch_touching_podmigration_annotations_is_denied(api, core, namespace, user):
    as_operator = client.CoreV1Api(as_user(api, OPERATOR))
    as_operator.create_namespaced_pod(namespace, pod("fenced", annotations={"podmigration.dev/fenced-by": "m"}))
    core.create_namespaced_pod(namespace, pod("plain"))
    pods = client.CoreV1Api(as_user(api, user))
    message = denied(
        pods.patch_namespaced_pod,
        "plain",
        namespace,
        {"metadata": {"annotations": {"podmigration.dev/fenced-by": "m"}}},
    )
    assert "only the podmigration operator may set, change or remove podmigration.dev/ annotations" in message
    for change in ("other", None):  # the operator's lock, changed or removed
        assert "podmigration.dev/fenced-by" in denied(
            pods.patch_namespaced_pod,
            "fenced",
            namespace,
            {"metadata": {"annotations": {"podmigration.dev/fenced-by": change}}},
        )
    assert "carries podmigration.dev/migration" in denied(
        core.create_namespaced_pod, namespace, pod("forged", annotations={"podmigration.dev/migration": "m"})
    )
    # Anything else about such a pod stays the user's (and its controllers').
    pods.patch_namespaced_pod("fenced", namespace, {"metadata": {"labels": {"tier": "x"}, "annotations": {"a": "b"}}})
    as_operator.patch_namespaced_pod(
        "fenced", namespace, {"metadata": {"annotations": {"podmigration.dev/fenced-by": None}}}
    )


@pytest.fixture
def restricted_guard(api: client.ApiClient, namespace: str, unique: str) -> Iterator[str]:
    """The chart's migration-guard rendered with admission.targetNode=authorized and admission.keepSource=forbidden,
    installed beside the release's own under another release name and bound to this test's namespace only: the
    values' rules are what the API server enforces, without reinstalling the chart the other tests use."""
    release = f"pm-e2e-{unique}"
    helm = subprocess.run(
        ["bash", str(REPO / "e2e/cluster/build-helm.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    rendered = subprocess.run(
        [
            helm,
            "template",
            release,
            str(REPO / "charts/podmigration"),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--show-only",
            "templates/admission.yaml",
            "--show-only",
            "templates/rbac.yaml",
            "--set",
            "admission.targetNode=authorized",
            "--set",
            "admission.keepSource=forbidden",
            # The chart's kubeVersion is checked against this (helm template assumes an old default otherwise).
            "--kube-version",
            client.VersionApi(api).get_code().git_version,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    policy = docs[("ValidatingAdmissionPolicy", f"{release}-migration-guard")]
    binding = docs[("ValidatingAdmissionPolicyBinding", f"{release}-migration-guard")]
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    target_node = docs[("ClusterRole", f"{release}-target-node")]
    admission = client.AdmissionregistrationV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    admission.create_validating_admission_policy(policy)
    admission.create_validating_admission_policy_binding(binding)
    rbac.create_cluster_role(target_node)
    yield release
    admission.delete_validating_admission_policy_binding(binding["metadata"]["name"])
    admission.delete_validating_admission_policy(policy["metadata"]["name"])
    rbac.delete_cluster_role(target_node["metadata"]["name"])


def test_target_node_and_keep_source_restricted_by_values(api, core, namespace, user, restricted_guard):
    """With admission.targetNode=authorized only a requester granted the node may choose it; with
    admission.keepSource=forbidden nobody may keep the source. Dry runs: admission decides, nothing migrates."""
    core.create_namespaced_pod(namespace, pod("victim"))
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role_binding(
        namespace,
        {  # the user may delete and create the pod: only the values bite
            "metadata": {"name": "editor"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    custom = client.CustomObjectsApi(as_user(api, user))

    def create(**spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PodMigration",
            "metadata": {"name": "move-victim"},
            "spec": {"podName": "victim", **spec},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")

    def refusal(**spec: Any) -> str | None:
        try:
            create(**spec)
        except ApiException as exc:
            assert exc.status == 403, exc.body
            return exc.body
        return None

    message = wait_for("the restricted policy in force", lambda: refusal(targetNode="worker-2"), timeout=60)
    assert "choosing node worker-2 needs the verb target-node" in message
    create()  # without a target the operator picks one: allowed
    assert "keepSource: true may not be set in this cluster" in (refusal(keepSource=True) or "")
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "target-node"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{restricted_guard}-target-node",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    wait_for(
        "worker-2 allowed once the user is granted target-node",
        lambda: refusal(targetNode="worker-2") is None,
        timeout=30,
    )
    assert "keepSource: true may not be set" in (refusal(targetNode="worker-2", keepSource=True) or "")
