"""A migrated pod is an ordinary pod (issue 14): a restored container killed later restarts fresh from its own
image, never from the checkpoint; the pod migrates again and again with its state; and no pod can restore a
checkpoint by an image computed from what PodMigration status publishes (issue 15, F4)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from e2elib import (
    COUNTER_IMAGE,
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    REPO,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    check_sequence,
    counter_pod,
    counter_template,
    emptydir_file,
    finished_migration,
    no_pods_left,
    node_exec,
    nothing_left_of_pods,
    placed_on_source,
    pod_gone,
    pods_of,
    read_counter,
    restored_flags,
    running_pod,
    seqwriter_pod,
    start_migration,
    wait_for,
)
from kubernetes import client

NODES = {SOURCE_NODE: TARGET_NODE, TARGET_NODE: SOURCE_NODE}


def move(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, name: str, container: str = "counter"
) -> tuple[client.V1Pod, dict]:
    """Migrates pod `name` to the other worker; returns the pod that serves then and the PodMigration's status."""
    source = running_pod(core, name)
    status = finished_migration(custom, start_migration(custom, name, NODES[source.spec.node_name]))["status"]
    assert status["phase"] == "Succeeded", status
    moved = running_pod(core, status["targetPod"])
    assert moved.spec.node_name == NODES[source.spec.node_name]
    assert restored_flags(moved.spec.node_name, moved) == {container: True}
    return moved, status


def image_id(node: str, image: str) -> str:
    return json.loads(node_exec(node, "crictl", "inspecti", "-o", "json", image))["status"]["id"]


def kill_counter(core: client.CoreV1Api, pod: client.V1Pod) -> client.V1Pod:
    """SIGKILL on the node to the container's process (as an OOM kill would end it); returns the pod once the
    kubelet restarted the container and it is Ready again."""
    container = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    pid = json.loads(node_exec(pod.spec.node_name, "crictl", "inspect", container))["info"]["pid"]
    node_exec(pod.spec.node_name, "kill", "-9", str(pid))

    def restarted() -> client.V1Pod | None:
        now = core.read_namespaced_pod(pod.metadata.name, NAMESPACE)
        statuses = now.status.container_statuses or []
        ready = any(c.type == "Ready" and c.status == "True" for c in now.status.conditions or [])
        return now if ready and statuses and statuses[0].restart_count == 1 and statuses[0].ready else None

    return wait_for(f"container of {pod.metadata.name} restarted and Ready", restarted, timeout=120)


@pytest.fixture
def bare(core, unique) -> Iterator[str]:
    name = f"life-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    try:
        yield name
    finally:
        for pod in core.list_namespaced_pod(NAMESPACE).items:
            if pod.metadata.name.startswith(name):
                core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)


def upgrade_restore_from(mode: str) -> None:
    helm = subprocess.run(
        ["bash", str(REPO / "e2e/cluster/build-helm.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        [
            helm,
            "upgrade",
            "podmigration",
            str(REPO / "charts/podmigration"),
            "-n",
            OPERATOR_NAMESPACE,
            "--reuse-values",
            "--set",
            f"nodeHelper.restoreFrom={mode}",
            "--wait",
            "--timeout",
            "5m",
        ],
        check=True,
        capture_output=True,
    )
    apps = client.AppsV1Api()

    def rolled_out() -> bool:
        ds = apps.read_namespaced_daemon_set_status("podmigration-node-helper", OPERATOR_NAMESPACE)
        want, st = ds.status.desired_number_scheduled, ds.status
        return (
            st.observed_generation == ds.metadata.generation
            and st.updated_number_scheduled == want
            and st.number_ready == want
            and st.number_available == want
        )

    wait_for("every node-helper restarted and ready", rolled_out, timeout=180)


@pytest.fixture(params=["archive", "image"])
def restore_from(request) -> Iterator[str]:
    """The chart's nodeHelper.restoreFrom for the test (the helpers restarted with it); the default (archive) again
    afterwards."""
    if request.param != "archive":
        upgrade_restore_from(request.param)
    try:
        yield request.param
    finally:
        if request.param != "archive":
            upgrade_restore_from("archive")


def test_a_restored_container_killed_later_restarts_fresh_from_its_own_image(core, custom, restore_from, bare):
    before = read_counter(running_pod(core, bare).status.pod_ip)
    moved, status = move(core, custom, bare)
    restored = read_counter(moved.status.pod_ip)
    assert restored["token"] == before["token"]
    node = moved.spec.node_name
    # Settled at once: the name in the replacement's spec is the counter image's own, no checkpoint is left.
    assert image_id(node, moved.spec.containers[0].image) == image_id(node, COUNTER_IMAGE)
    nothing_left_of_pods(core, custom, bare)
    assert json.loads(moved.metadata.annotations["podmigration.dev/original-images"]) == {"counter": COUNTER_IMAGE}

    restarted = kill_counter(core, moved)
    after = read_counter(restarted.status.pod_ip)
    assert after["token"] != restored["token"], "restarted fresh, not from the checkpoint again"
    assert restored_flags(node, restarted) == {"counter": False}

    # The restarted process migrates again, with its own state.
    again, _ = move(core, custom, restarted.metadata.name)
    assert read_counter(again.status.pod_ip)["token"] == after["token"]
    pod_gone(core, restarted.metadata.name)
    nothing_left_of_pods(core, custom, bare, restarted.metadata.name)
    assert node_exec(node, "crictl", "inspecti", moved.spec.containers[0].image, check=False) == b"", (
        "the name the first replacement restarted from went with it"
    )


def three_moves(core: client.CoreV1Api, custom: client.CustomObjectsApi, name: str) -> list[client.V1Pod]:
    """w1 -> w2 -> w1 -> w2: the same process throughout (its token), its count growing; returns the replacements."""
    first_name, first = name, read_counter(running_pod(core, name).status.pod_ip)
    counts, replacements = [first["count"]], []
    for _ in range(3):
        moved, _ = move(core, custom, name)
        reading = read_counter(moved.status.pod_ip)
        assert reading["token"] == first["token"] and reading["count"] >= counts[-1], (reading, first, counts)
        counts.append(reading["count"])
        replacements.append(moved)
        name = moved.metadata.name
    assert [r.spec.node_name for r in replacements] == [TARGET_NODE, SOURCE_NODE, TARGET_NODE]
    assert counts[-1] > counts[0]
    nothing_left_of_pods(core, custom, first_name, *[r.metadata.name for r in replacements[:-1]])
    return replacements


def without_names(core: client.CoreV1Api, pod: client.V1Pod) -> dict[str, Any]:
    """The spec and our annotations, with every migration's uid and name and every pod's name taken out."""
    data = core.api_client.sanitize_for_serialization(pod)
    annotations = {k: v for k, v in (data["metadata"].get("annotations") or {}).items() if k.startswith(GROUP)}
    kept = {"spec": data["spec"], "labels": data["metadata"].get("labels"), "annotations": annotations}
    kept["spec"].pop("nodeName")
    for container in kept["spec"]["containers"]:
        container["image"] = "checkpoint image" if "/podmigration-checkpoint/" in container["image"] else "?"
    for key in ("podmigration.dev/migration", "podmigration.dev/migrated-from"):
        annotations.pop(key, None)
    # The service account's token volume the API server adds to each pod its owner creates has a random name.
    return json.loads(re.sub(r"kube-api-access-[a-z0-9]+", "kube-api-access", json.dumps(kept)))


def test_a_bare_pod_moves_three_times_and_stays_the_same_process(core, custom, bare):
    replacements = three_moves(core, custom, bare)
    assert without_names(core, replacements[2]) == without_names(core, replacements[0])
    assert len(replacements[2].metadata.name) == len(replacements[0].metadata.name), "names do not grow"


@pytest.fixture(params=["Deployment", "StatefulSet"])
def owned(request, core, apps, unique) -> Iterator[str]:
    """One counter pod of a Deployment or a StatefulSet, on SOURCE_NODE; yields its name."""
    name = f"own-{unique}"
    template = counter_template(name)
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}
    if request.param == "StatefulSet":
        core.create_namespaced_service(
            NAMESPACE,
            {
                "metadata": {"name": name},
                "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8080}]},
            },
        )
        with placed_on_source(core, [name]):
            apps.create_namespaced_stateful_set(
                NAMESPACE, {"metadata": {"name": name}, "spec": {**spec, "serviceName": name}}
            )
    else:
        with placed_on_source(core, [name]):
            apps.create_namespaced_deployment(NAMESPACE, {"metadata": {"name": name}, "spec": spec})
    try:
        (pod,) = wait_for("the owner's pod", lambda: pods_of(core, name))
        yield pod.metadata.name
    finally:
        if request.param == "StatefulSet":
            apps.delete_namespaced_stateful_set(name, NAMESPACE, propagation_policy="Foreground")
            core.delete_namespaced_service(name, NAMESPACE)
        else:
            apps.delete_namespaced_deployment(name, NAMESPACE, propagation_policy="Foreground")
        no_pods_left(core, name)


def test_an_owned_pod_moves_three_times_and_stays_the_same_process(core, custom, owned):
    replacements = three_moves(core, custom, owned)
    assert without_names(core, replacements[2]) == without_names(core, replacements[0])
    assert len(pods_of(core, replacements[2].metadata.labels["app"])) == 1, "the owner neither doubles nor loses it"


PAUSE_AT, PAUSED_AT = "podmigration.dev/test-pause-at", "podmigration.dev/test-paused-at"


def image_layout(config: bytes, layer: bytes) -> bytes:
    """A tar of an OCI image layout of one image (one layer): what a registry would serve an attacker's image as."""
    blobs = {hashlib.sha256(b).hexdigest(): b for b in (config, layer)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{hashlib.sha256(layer).hexdigest()}",
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    blobs[hashlib.sha256(manifest).hexdigest()] = manifest
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": f"sha256:{hashlib.sha256(manifest).hexdigest()}",
                        "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": "latest"},
                    }
                ],
            }
        ).encode(),
        **{f"blobs/sha256/{digest}": data for digest, data in blobs.items()},
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_an_image_computed_from_the_status_restores_nothing_of_the_victim(core, custom, bare, unique):
    """Issue 15 F4. Paused in Restoring (the victim's pointer image and its link to the archive exist on the
    target), an attacker builds the image a restore from the archive names, from what PodMigration status
    publishes (the archive id and its digest), as the pointer image's config was then, and has it pulled on the
    target under a name of its own (here loaded as a pull would store it): the same config is the same image id, so
    it was the pointer image, linked to the victim's archive."""
    victim = read_counter(running_pod(core, bare).status.pod_ip)
    name = start_migration(custom, bare, TARGET_NODE, annotations={PAUSE_AT: "replacement-created"})
    migration = wait_for(
        "the migration paused with the replacement created",
        lambda: (
            lambda m: m if (m["metadata"].get("annotations") or {}).get(PAUSED_AT) == "replacement-created" else None
        )(custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)),
    )
    published = migration["status"]["containers"][0]
    empty = bytes(1024)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Labels": {
                    "podmigration.dev/archive": f"{migration['metadata']['uid']}-counter",
                    "podmigration.dev/archive-sha256": published.get("sha256") or published.get("digest"),
                }
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(empty).hexdigest()}"]},
        }
    ).encode()
    innocent = f"localhost/innocent-{unique}:latest"
    node_exec(
        TARGET_NODE,
        "sh",
        "-c",
        f"d=$(mktemp -d) && tar -x -C $d && skopeo copy -q oci:$d:latest "
        f"containers-storage:{innocent}; rc=$?; rm -rf $d; exit $rc",
        stdin=image_layout(config, empty),
    )
    attacker = counter_pod(f"attacker-{unique}", TARGET_NODE, image=innocent)
    attacker["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    core.create_namespaced_pod(NAMESPACE, attacker)
    try:

        def outcome() -> str | None:
            pod = core.read_namespaced_pod(attacker["metadata"]["name"], NAMESPACE)
            state = (pod.status.container_statuses or [None])[0]
            if state is None:
                return None
            if state.state.running and pod.status.pod_ip:
                return read_counter(pod.status.pod_ip)["token"]
            waiting = state.state.waiting
            return f"refused: {waiting.reason}" if waiting and waiting.reason not in ("ContainerCreating",) else None

        result = wait_for("the attacker's pod to run or be refused", outcome, timeout=60)
        assert result != victim["token"], "the attacker's pod runs the victim's process"
    finally:
        core.delete_namespaced_pod(attacker["metadata"]["name"], NAMESPACE, grace_period_seconds=0)
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, {"metadata": {"annotations": {PAUSE_AT: None}}}
        )
        node_exec(TARGET_NODE, "crictl", "rmi", innocent, check=False)
    status = finished_migration(custom, name)["status"]
    assert status["phase"] == "Succeeded", status
    assert read_counter(running_pod(core, status["targetPod"]).status.pod_ip)["token"] == victim["token"]


def test_a_pod_with_an_emptydir_moves_there_and_back_with_its_file(core, custom, pods, unique):
    """The second move copies the volume again and gates the restore once (the first restore's gate is not a
    volume of the pod's)."""
    name = f"life-vol-{unique}"
    pods.append(name)
    core.create_namespaced_pod(NAMESPACE, seqwriter_pod(name, SOURCE_NODE))
    before = read_counter(running_pod(core, name).status.pod_ip)
    for node in (TARGET_NODE, SOURCE_NODE):
        moved, status = move(core, custom, name, container="app")
        assert [v["name"] for v in status["volumes"]] == ["data"], status["volumes"]
        assert moved.spec.node_name == node and [c.name for c in moved.spec.init_containers] == ["podmigration-volumes"]
        pods.append(moved.metadata.name)
        last = check_sequence(emptydir_file(node, moved.metadata.uid, "data", "seq.txt"), status["volumes"])
        after = read_counter(moved.status.pod_ip)
        assert after["token"] == before["token"] and last >= before["count"] - 1, (before, last, after)
        name = moved.metadata.name
