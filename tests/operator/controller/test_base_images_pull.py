"""Preparing's base images in pull mode: the target's kubelet pulls them through a short-lived pod with the pod's
credentials (never a copy from another node), a refusal ends the migration before anything is touched, and a
replacement that admission forced to pull its checkpoint images (AlwaysPullImages) fails at once."""

import dataclasses

import pytest
from pmfakes import start

from podmigration import api
from podmigration.api import phases
from podmigration.domain import baseimages

PULLED = {"waiting": {"reason": "CreateContainerError", "message": "executable file not found"}}


@pytest.fixture
def pulling(world):
    """world in pull mode, with a kubelet on the target that answers the pre-pull pod with ``states`` (container ->
    state; a start failure after the pull by default)."""
    kube, helpers, clock, events, deps = world
    states: dict = {}

    def kubelet(k):
        for pod in k.pods.values():
            if api.PREPULL_LABEL in (pod["metadata"].get("labels") or {}) and "containerStatuses" not in pod["status"]:
                pod["status"]["containerStatuses"] = [
                    {"name": c["name"], "state": states.get(c["name"], PULLED)} for c in pod["spec"]["containers"]
                ]

    kube.on_get_migration.insert(0, kubelet)
    world = (
        kube,
        helpers,
        clock,
        events,
        dataclasses.replace(deps, config=dataclasses.replace(deps.config, base_images="pull")),
    )
    return world, states


def _prepulls(kube):
    return [p for p in kube.created_pods if api.PREPULL_LABEL in (p["metadata"].get("labels") or {})]


def test_the_targets_kubelet_pulls_with_the_pods_credentials_and_the_prepull_pod_goes(pulling):
    world, _ = pulling
    kube, helpers = world[0], world[1]
    kube.pods[("default", "counter")]["spec"]["imagePullSecrets"] = [{"name": "tenant-pull"}]
    migration, uid = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    (prepull,) = _prepulls(kube)
    assert prepull["spec"]["nodeName"] == "worker-2" and prepull["spec"]["imagePullSecrets"] == [
        {"name": "tenant-pull"}
    ]
    assert [c["image"] for c in prepull["spec"]["containers"]] == ["localhost/app:1", "localhost/side:1"]
    assert baseimages.prepull_name(uid) in kube.deleted_pods
    assert ("default", baseimages.prepull_name(uid)) not in kube.pods
    assert not [c for c in helpers.calls if c[0] == "ensure_images"], "no image crosses between nodes"


def test_an_image_the_kubelet_will_not_get_ends_the_migration_in_preparing_with_the_source_untouched(pulling):
    world, states = pulling
    kube, helpers = world[0], world[1]
    states["side"] = {
        "waiting": {"reason": "ErrImageNeverPull", "message": "image not present with pull policy of Never"}
    }
    migration, uid = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ImageNotOnTarget")
    assert "localhost/side:1" in status["message"] and "pull policy of Never" in status["message"]
    assert [t["phase"] for t in status["phaseTransitions"]][-2:] == [phases.PREPARING, phases.FAILED]
    assert not [c for c in helpers.calls if c[0] in ("checkpoint", "freeze", "cut_network")]
    assert not kube.pods[("default", "counter")]["metadata"]["annotations"], "the source was never fenced"
    assert ("default", baseimages.prepull_name(uid)) not in kube.pods


def test_a_prepull_pod_left_by_a_dead_operator_is_reused_not_created_again(pulling):
    world, _ = pulling
    kube = world[0]
    pod = kube.pods[("default", "counter")]
    migration = kube.create_migration("default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter"}})
    left = baseimages.prepull_pod(
        pod, baseimages.containers_to_pull(pod), migration=migration, target_node="worker-2", deadline_seconds=60
    )
    kube.create_pod("default", left)
    kube.created_pods.clear()
    del kube.migrations[("default", "counter-mig")]
    migration, uid = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    assert left["metadata"]["name"] == baseimages.prepull_name(uid)
    assert not _prepulls(kube) and left["metadata"]["name"] in kube.deleted_pods


def test_a_replacement_forced_to_always_pull_its_checkpoint_images_fails_at_once_and_rolls_back(world):
    kube = world[0]
    create = kube.create_pod

    def always_pull_images(namespace, body):
        for container in body["spec"]["containers"]:
            container["imagePullPolicy"] = "Always"
        return create(namespace, body)

    kube.create_pod = always_pull_images
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "AlwaysPullImages"), status["message"]
    assert "app, side" in status["message"]
    assert status["targetPod"] in kube.deleted_pods, "the replacement is discarded"
    assert not kube.pods[("default", "counter")]["metadata"]["annotations"], "the source is back in traffic"
