"""The StatefulSet hand-over webhook: exactly the listed pods, turned into their migration's restore."""

import kopf
from pmfakes import CONFIG, FakeKube

from podmigration import api
from podmigration.controller.context import Deps
from podmigration.domain import handover
from podmigration.webhooks import admission


def migration(phase="Restoring", pod="web-0", volumes=None):
    return {
        "metadata": {"name": "web-mig", "namespace": "default", "uid": "0f1e2d3c-1111"},
        "spec": {"podName": pod},
        "status": {"phase": phase, "targetNode": "worker-2", "handover": {"pod": pod}, "volumes": volumes or []},
    }


def test_match_expression_lists_the_pods_of_unfinished_migrations_only():
    done = migration("Succeeded", pod="db-0")
    assert handover.handed_over([migration(), done]) == [("default", "web-0")]
    assert handover.match_expression([]) == "false"
    assert handover.match_expression([("default", "web-0"), ("shop", "db-1")]) == (
        "(object.metadata.namespace + '/' + object.metadata.name) in ['default/web-0', 'shop/db-1']"
    )


def test_webhook_turns_the_controllers_pod_into_the_restore():
    kube = FakeKube()
    kube.migrations[("default", "web-mig")] = migration(volumes=[{"name": "data"}])
    body = {
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {
            "hostname": "web-0",
            "subdomain": "web",
            "initContainers": [{"name": "init", "image": "x"}],
            "containers": [{"name": "app", "image": "localhost/web:1"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }
    patch = kopf.Patch()
    admission.statefulset_handover(
        body=body,
        namespace="default",
        patch=patch,
        memo=kopf.Memo(deps=Deps(kube=kube, helpers=None, config=CONFIG, events=None)),
    )
    assert patch["metadata"]["annotations"][api.MIGRATION_ANNOTATION] == "web-mig"
    spec = patch["spec"]
    assert spec["nodeName"] == "worker-2" and spec["hostname"] == "web-0"
    assert spec["containers"][0]["image"] == api.checkpoint_image("0f1e2d3c-1111", "app")
    assert [c["name"] for c in spec["initContainers"]] == [api.VOLUMES_GATE_CONTAINER]  # the old init is gone


def test_webhook_leaves_a_pod_alone_once_its_migration_ended():
    kube = FakeKube()
    kube.migrations[("default", "web-mig")] = migration("Failed")
    patch = kopf.Patch()
    admission.statefulset_handover(
        body={"metadata": {"name": "web-0"}, "spec": {"containers": []}},
        namespace="default",
        patch=patch,
        memo=kopf.Memo(deps=Deps(kube=kube, helpers=None, config=CONFIG, events=None)),
    )
    assert not patch
