"""Nothing left behind (issue 14): the name settle gives a restored pod's own image on the target (the image its
restarts start from) goes once that pod is deleted, by garbage collection alone, by name: the image itself stays
for every other pod. A helper that kept such a name until the operator said the pod moved away or rolled back kept
it for good after a plain delete (garbage collection asked every period, the helper kept it every time), and this
test timed out waiting for it to go."""

from __future__ import annotations

import json

from e2elib import (
    COUNTER_IMAGE,
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    counter_pod,
    finished_migration,
    node_exec,
    pod_gone,
    running_pod,
    start_migration,
    wait_for,
)


def names_on(node: str) -> set[str]:
    return {
        tag
        for image in json.loads(node_exec(node, "crictl", "images", "-o", "json"))["images"]
        for tag in image.get("repoTags") or []
    }


def image_id(node: str, image: str) -> str:
    return json.loads(node_exec(node, "crictl", "inspecti", "-o", "json", image))["status"]["id"]


def test_the_name_a_deleted_restored_pod_restarted_from_goes_and_its_image_stays(core, custom, pods, unique):
    name = f"alias-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    pods.append(name)
    running_pod(core, name)
    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
    assert status["phase"] == "Succeeded", status
    moved = running_pod(core, status["targetPod"])
    alias = moved.spec.containers[0].image
    counter = image_id(TARGET_NODE, COUNTER_IMAGE)
    assert "/podmigration-checkpoint/" in alias and alias in names_on(TARGET_NODE)
    assert image_id(TARGET_NODE, alias) == counter, "settle gave the spec's name to the counter image"

    core.delete_namespaced_pod(moved.metadata.name, NAMESPACE, grace_period_seconds=0)
    pod_gone(core, moved.metadata.name)
    # The kubelet removes the pod's containers and sandbox a little later, then the next collection (every 5 s in
    # the e2e install, 60 s by default) takes the name.
    wait_for(f"{alias} gone from {TARGET_NODE}", lambda: alias not in names_on(TARGET_NODE), timeout=300, interval=2)
    assert COUNTER_IMAGE in names_on(TARGET_NODE) and image_id(TARGET_NODE, COUNTER_IMAGE) == counter, (
        "the counter image stays: every other pod of it starts from it"
    )
