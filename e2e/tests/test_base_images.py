"""operator.baseImages=pull: the target's kubelet gets a pod's base images with the pod's own credentials, through a
short-lived pod; an image it will not get ends the migration in Preparing with the source serving. No registry is
needed: an image only the source holds is asked for with imagePullPolicy Never, refused, then loaded onto the target
and found there. The suite installs with pull, the default (e2e/install.sh); the fixture makes sure of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2elib import (
    COUNTER_IMAGE,
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    cluster_leftovers,
    counter_pod,
    finished_migration,
    node_exec,
    nothing_left_of_pods,
    operator_env,
    pod_gone,
    running_pod,
    start_migration,
)


@pytest.fixture
def pull_mode() -> Iterator[None]:
    """The operator in pull mode for the test (the chart's default), whatever the suite installed."""
    with operator_env(PM_BASE_IMAGES="pull"):
        yield


def test_pull_mode_refuses_an_image_the_target_lacks_under_never_and_moves_the_pod_once_it_is_there(
    api, core, custom, pods, unique, pull_mode
):
    image = f"localhost/pm-counter:only-on-source-{unique}"
    load = ("skopeo", "copy", "-q", f"containers-storage:{COUNTER_IMAGE}", f"containers-storage:{image}")
    node_exec(SOURCE_NODE, *load)
    source = f"pull-never-{unique}"
    spec = counter_pod(source, SOURCE_NODE, image=image)
    spec["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(source)
    try:
        running_pod(core, source)
        assert node_exec(TARGET_NODE, "crictl", "inspecti", image, check=False) == b""
        status = finished_migration(custom, start_migration(custom, source, TARGET_NODE))["status"]
        assert (status["phase"], status["reason"]) == ("Failed", "ImageNotOnTarget"), status
        assert image in status["message"], status["message"]
        assert [t["phase"] for t in status["phaseTransitions"]][-2:] == ["Preparing", "Failed"], status
        assert node_exec(TARGET_NODE, "crictl", "inspecti", image, check=False) == b"", "nothing was copied"
        pod = running_pod(core, source)
        assert pod.metadata.uid == status["sourcePodUID"] and not (pod.metadata.annotations or {}), "untouched"
        assert cluster_leftovers(api, [source]) == []
        # Loaded onto the target as an administrator would: now the kubelet finds it under Never, and the pod moves.
        node_exec(TARGET_NODE, *load)
        status = finished_migration(custom, start_migration(custom, source, TARGET_NODE))["status"]
        assert status["phase"] == "Succeeded", status
        pod_gone(core, source)  # the source, killed frozen at Finalizing, may still be terminating
        assert cluster_leftovers(api, [source]) == [], "the pod that had the kubelet check the image is gone"
        nothing_left_of_pods(core, custom, source)
        core.delete_namespaced_pod(status["targetPod"], NAMESPACE, grace_period_seconds=0)
        pod_gone(core, status["targetPod"])
    finally:
        for node in (SOURCE_NODE, TARGET_NODE):
            # By name, never by id: the image is pm-counter's own under one more name (see test_migration.py).
            node_exec(node, "crictl", "rmi", image, check=False)
