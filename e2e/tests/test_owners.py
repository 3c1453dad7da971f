"""Pods of a Deployment, a StatefulSet and a Job migrate, and their owners neither double nor lose them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2elib import (
    COUNTER_IMAGE,
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    cluster_leftovers,
    counter_template,
    create_service,
    finished_migration,
    no_pods_left,
    nothing_left_on_nodes,
    placed_on_source,
    pods_of,
    read_counter,
    restored_flags,
    running_pod,
    start_migration,
    wait_for,
)
from kubernetes import client, watch

MIGRATION_ANNOTATION = "podmigration.dev/migration"


@pytest.fixture(scope="module")
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


class PodCreations(threading.Thread):
    """Records every pod ADDED with label app=<app>, from before a migration on."""

    def __init__(self, core: client.CoreV1Api, app: str) -> None:
        super().__init__(daemon=True)
        self.core, self.app, self.added = core, app, []
        self._watch = watch.Watch()
        self._ready = threading.Event()
        self.start()
        assert self._ready.wait(30)

    def run(self) -> None:
        version = self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={self.app}").metadata.resource_version
        self._ready.set()
        try:
            for event in self._watch.stream(
                self.core.list_namespaced_pod,
                NAMESPACE,
                label_selector=f"app={self.app}",
                resource_version=version,
                timeout_seconds=900,
            ):
                if event["type"] == "ADDED":
                    self.added.append(event["object"])
        except Exception as exc:
            if not self.stopping:
                self.error = exc
        else:
            if not self.stopping:
                self.error = TimeoutError("the watch ended before it was stopped")

    stopping = False
    error: BaseException | None = None

    def stop(self) -> list[client.V1Pod]:
        """The pods added; fails if the watch ended early, since creations after that would have gone unseen."""
        self.stopping = True
        self._watch.stop()
        self.join(30)
        assert self.error is None, f"the watch of the pods of {self.app} failed: {self.error!r}"
        return self.added


@pytest.fixture
def deployment(core, apps, unique) -> Iterator[str]:
    name = f"web-{unique}"
    body = {
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": counter_template(name)},
    }
    with placed_on_source(core, [name]):
        apps.create_namespaced_deployment(NAMESPACE, body)
    try:
        yield name
    finally:
        apps.delete_namespaced_deployment(name, NAMESPACE, propagation_policy="Foreground")
        core.delete_namespaced_service(name, NAMESPACE)
        no_pods_left(core, name)


def test_deployment_pod_moves_without_an_extra_or_a_missing_replica(core, custom, apps, deployment):
    ip = create_service(core, deployment, 8080)
    pods = wait_for(
        "2 Ready replicas",
        lambda: (
            lambda ps: (
                ps if len(ps) == 2 and all(c.ready for p in ps for c in p.status.container_statuses or []) else None
            )
        )(pods_of(core, deployment)),
    )
    source = next(p for p in pods if p.spec.node_name == SOURCE_NODE)
    tokens = {p.metadata.name: read_counter(p.status.pod_ip)["token"] for p in pods}
    answers: list[dict[str, Any]] = []
    outages: list[str] = []
    stop = threading.Event()

    def client_through_the_service() -> None:
        while not stop.is_set():
            try:
                answers.append(read_counter(ip, timeout=10))
            except AssertionError as exc:  # no answer through the Service for 10 s: reported below
                outages.append(str(exc))
            time.sleep(0.05)

    reader = threading.Thread(target=client_through_the_service, daemon=True)
    creations = PodCreations(core, deployment)
    reader.start()
    migration = finished_migration(custom, start_migration(custom, source.metadata.name, TARGET_NODE))
    status, migration_uid = migration["status"], migration["metadata"]["uid"]
    stop.set()
    reader.join(30)
    assert not reader.is_alive() and outages == [], outages
    assert status["phase"] == "Succeeded", status
    # A spec change makes the ReplicaSet sync once more (it counts its pods and acts): anything it would create or
    # delete over the moved pod happens before it records that generation, while the creations are still watched.
    replicaset = source.metadata.owner_references[0].name
    apps.patch_namespaced_deployment(deployment, NAMESPACE, {"spec": {"minReadySeconds": 1}})
    wait_for(
        f"ReplicaSet {replicaset} synced after the move",
        lambda: (
            lambda rs: rs.spec.min_ready_seconds == 1 and (rs.status.observed_generation == rs.metadata.generation)
        )(apps.read_namespaced_replica_set(replicaset, NAMESPACE)),
    )
    added = creations.stop()
    assert [p.metadata.name for p in added] == [status["targetPod"]], "a pod other than the restore was created"
    after = wait_for("exactly 2 pods", lambda: (lambda ps: ps if len(ps) == 2 else None)(pods_of(core, deployment)))
    assert all(p.metadata.owner_references[0].name == replicaset for p in after)
    moved = next(p for p in after if p.metadata.name == status["targetPod"])
    assert moved.spec.node_name == TARGET_NODE and restored_flags(TARGET_NODE, moved) == {"counter": True}
    assert read_counter(moved.status.pod_ip)["token"] == tokens[source.metadata.name]
    assert answers and all(a["token"] in tokens.values() for a in answers), "an answer from a fresh process"
    assert sorted(p.metadata.name for p in pods_of(core, deployment)) == sorted(p.metadata.name for p in after)
    nothing_left_on_nodes(core, migration_uid, source.metadata.uid)


@pytest.fixture
def statefulset(core, apps, unique) -> Iterator[str]:
    name = f"db-{unique}"
    core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8080}]},
        },
    )
    with placed_on_source(core, [name]):
        apps.create_namespaced_stateful_set(
            NAMESPACE,
            {
                "metadata": {"name": name},
                "spec": {
                    "serviceName": name,
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": counter_template(name),
                },
            },
        )
    try:
        yield name
    finally:
        apps.delete_namespaced_stateful_set(name, NAMESPACE, propagation_policy="Foreground")
        core.delete_namespaced_service(name, NAMESPACE)
        no_pods_left(core, name)


def test_statefulset_pod_keeps_its_name_hostname_and_memory(core, custom, apps, statefulset):
    pod_name = f"{statefulset}-0"
    wait_for(f"the StatefulSet to create {pod_name}", lambda: pods_of(core, statefulset))
    source = running_pod(core, pod_name)
    before = read_counter(source.status.pod_ip)
    assert before["container"] == pod_name and source.spec.node_name == SOURCE_NODE  # answers with its hostname
    migration = finished_migration(custom, start_migration(custom, pod_name, TARGET_NODE))
    status = migration["status"]
    assert status["phase"] == "Succeeded", status
    moved = running_pod(core, pod_name)
    assert moved.metadata.uid != source.metadata.uid and moved.spec.node_name == TARGET_NODE
    assert moved.spec.hostname == pod_name and moved.metadata.owner_references[0].kind == "StatefulSet"
    assert restored_flags(TARGET_NODE, moved) == {"counter": True}
    after = read_counter(moved.status.pod_ip)
    assert (after["token"], after["container"]) == (before["token"], pod_name) and after["count"] >= before["count"]
    nothing_left_on_nodes(core, migration["metadata"]["uid"], source.metadata.uid)


def test_statefulset_operator_killed_in_the_hand_over_window_never_starts_the_pod_fresh(api, core, custom, statefulset):
    """The leading operator exits right after the source is deleted: the controller's create is refused (the webhook
    fails closed) or turned into the restore, until the next replica resumes; every pod created is the restore."""
    from test_faults import CRASH_AT, CRASHED_AT, operator_ready

    pod_name = f"{statefulset}-0"
    wait_for(f"the StatefulSet to create {pod_name}", lambda: pods_of(core, statefulset))
    source = running_pod(core, pod_name)
    before = read_counter(source.status.pod_ip)
    creations = PodCreations(core, statefulset)
    name = start_migration(custom, pod_name, TARGET_NODE, annotations={CRASH_AT: "handed-over"}, timeoutSeconds=600)
    migration = finished_migration(custom, name, timeout=600)
    added = creations.stop()
    assert migration["metadata"]["annotations"].get(CRASHED_AT) == "handed-over", "no crash in the window"
    assert migration["status"]["phase"] == "Succeeded", migration["status"]
    fresh = [p.metadata.name for p in added if (p.metadata.annotations or {}).get(MIGRATION_ANNOTATION) != name]
    assert fresh == [] and len(added) == 1, [(p.metadata.name, p.metadata.annotations) for p in added]
    moved = running_pod(core, pod_name)
    assert moved.spec.node_name == TARGET_NODE and restored_flags(TARGET_NODE, moved) == {"counter": True}
    assert read_counter(moved.status.pod_ip)["token"] == before["token"]
    operator_ready(core)
    nothing_left_on_nodes(core, migration["metadata"]["uid"], source.metadata.uid)
    assert cluster_leftovers(api, [pod_name]) == []  # the webhook no longer matches the pod


JOB_SCRIPT = "import time\nfor i in range(1, 201):\n    print(i, flush=True)\n    time.sleep(0.1)\n"


def test_job_moved_mid_run_completes_once_without_a_failure(core, custom, batch, unique):
    name = f"crunch-{unique}"
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "nodeName": SOURCE_NODE,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "work",
                    "image": COUNTER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-u", "-c", JOB_SCRIPT],
                }
            ],
        },
    }
    batch.create_namespaced_job(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "completions": 1, "parallelism": 1, "template": template},
        },
    )
    try:
        (source,) = wait_for(
            "the Job's pod running", lambda: [p for p in pods_of(core, name) if p.status.phase == "Running"]
        )
        wait_for(
            "the Job to print 20",
            lambda: int((core.read_namespaced_pod_log(source.metadata.name, NAMESPACE) or "0").split()[-1]) >= 20,
        )
        status = finished_migration(custom, start_migration(custom, source.metadata.name, TARGET_NODE))["status"]
        assert status["phase"] == "Succeeded", status
        moved = core.read_namespaced_pod(status["targetPod"], NAMESPACE)
        assert moved.metadata.owner_references[0].name == name and moved.spec.node_name == TARGET_NODE
        job = wait_for(
            "the Job to end",
            lambda: (lambda j: j if j.status.succeeded or j.status.failed else None)(
                batch.read_namespaced_job(name, NAMESPACE)
            ),
            timeout=120,
        )
        assert (job.status.succeeded, job.status.failed or 0) == (1, 0), job.status
        assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
        assert restored_flags(TARGET_NODE, moved) == {"work": True}
        # CRI-O restores the container's log with it: one run from 1 to 200, no number twice (a restart of the
        # work would print 1, 2, ... again after the numbers printed before the move).
        printed = [int(x) for x in core.read_namespaced_pod_log(status["targetPod"], NAMESPACE).split()]
        assert printed == list(range(1, 201)), printed
    finally:
        batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Foreground")
        no_pods_left(core, name)
