"""Migrations through the operator on a real cluster: state continues, sources go, nothing is left behind."""

from __future__ import annotations

from e2elib import (
    COUNTER_IMAGE,
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    EndpointWatch,
    assert_rolled_back,
    counter_pod,
    create_service,
    finished_migration,
    node_exec,
    nothing_left_on_nodes,
    operator_env,
    operator_leader,
    operator_pods,
    peers,
    pod_gone,
    read_counter,
    restored_flags,
    running_pod,
    service_endpoints,
    slow_to_be_ready,
    start_migration,
    wait_for,
)
from kubernetes import client


def migrate_and_check(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, source: str, ports: dict[str, int]
) -> client.V1Pod:
    """Migrates `source` to TARGET_NODE and asserts what a user relies on, for every container in `ports`;
    returns the replacement pod."""
    src = running_pod(core, source)
    before = {name: read_counter(src.status.pod_ip, port) for name, port in ports.items()}

    migration = finished_migration(custom, start_migration(custom, source, TARGET_NODE))
    status = migration["status"]
    assert status["phase"] == "Succeeded", status
    assert (status["sourceNode"], status["targetNode"]) == (SOURCE_NODE, TARGET_NODE)
    for key in ("checkpoint", "transfer", "restore", "downtime", "total"):
        assert status["durations"][key] > 0, status["durations"]
    assert status["checkpointBytes"] > 0 and status["transferredBytes"] > 0
    # The progress, as kubectl migrate shows it, ends with the last step on bytes (the checkpoint image of the
    # last container) done, every byte of its archive copied in.
    progress = status["progress"]
    assert progress["step"] == "image" and progress["bytesDone"] == progress["bytesExpected"] > 0, progress
    assert [p["phase"] for p in status["phaseTransitions"]] == [
        "Pending",
        "Preparing",
        "Checkpointing",
        "Transferring",
        "Restoring",
        "Finalizing",
        "Succeeded",
    ]

    new = running_pod(core, status["targetPod"])
    assert new.spec.node_name == TARGET_NODE
    assert restored_flags(TARGET_NODE, new) == {name: True for name in ports}
    for name, port in ports.items():
        after = read_counter(new.status.pod_ip, port)
        assert after["token"] == before[name]["token"], f"container {name} restarted instead of continuing"
        assert after["count"] >= before[name]["count"], (name, before[name], after)

    pod_gone(core, source)
    nothing_left_on_nodes(core, migration["metadata"]["uid"], src.metadata.uid)
    return new


def test_bare_pod_moves_with_its_memory(core, custom, pods, unique):
    source = f"mig-{unique}"
    # Some ballast, so the archive spans many chunks of the streams whose progress is recorded.
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE, ballast_mb=128))
    pods.append(source)
    migrate_and_check(core, custom, source, {"counter": 8080})


def test_two_containers_keep_their_own_state_and_init_containers_do_not_run_again(core, custom, pods, unique):
    source = f"mig2-{unique}"
    ports = {"first": 8080, "second": 8081}
    spec = counter_pod(source, SOURCE_NODE, ports)
    spec["spec"]["initContainers"] = [{"name": "init", "image": COUNTER_IMAGE, "command": ["python3", "-c", "pass"]}]
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(source)
    replacement = migrate_and_check(core, custom, source, ports)
    assert not replacement.spec.init_containers and not replacement.status.init_container_statuses


def test_base_image_missing_on_the_target_is_copied_from_the_source(core, custom, pods, unique):
    """operator.baseImages=copy, for images in no registry (the local cluster's): the helpers copy it."""
    with operator_env(PM_BASE_IMAGES="copy"):
        _base_image_copied(core, custom, pods, unique)


def _base_image_copied(core, custom, pods, unique):
    image = f"localhost/pm-counter:only-on-source-{unique}"
    node_exec(SOURCE_NODE, "skopeo", "copy", "-q", f"containers-storage:{COUNTER_IMAGE}", f"containers-storage:{image}")
    source = f"mig-img-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE, image=image))
    pods.append(source)
    try:
        assert node_exec(TARGET_NODE, "crictl", "inspecti", image, check=False) == b""
        replacement = migrate_and_check(core, custom, source, {"counter": 8080})
        assert node_exec(TARGET_NODE, "crictl", "inspecti", image) != b""
        core.delete_namespaced_pod(replacement.metadata.name, NAMESPACE, grace_period_seconds=0)
        pod_gone(core, replacement.metadata.name)
    finally:
        for node in (SOURCE_NODE, TARGET_NODE):
            # By name, never by id: the copy is pm-counter's own image under one more name, so removing its id
            # would take pm-counter off the node and no later pod could start there.
            node_exec(node, "crictl", "rmi", image, check=False)


def test_target_is_picked_when_not_given(core, custom, pods, unique):
    source = f"mig-auto-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)
    running_pod(core, source)
    status = finished_migration(custom, start_migration(custom, source))["status"]
    # The control-plane node is tainted NoSchedule and the source is excluded: the target node is the one left.
    assert (status["phase"], status["targetNode"]) == ("Succeeded", TARGET_NODE), status


def test_a_pod_kept_apart_from_its_own_kind_still_moves(core, custom, pods, unique):
    """Required anti-affinity against its own label over kubernetes.io/os (one such pod per OS: every node is in the
    same domain): the pod that moves is not counted as in the way of its replacement, and the automatic target is
    the other worker."""
    source = f"mig-single-{unique}"
    spec = counter_pod(source, SOURCE_NODE)
    term = {"labelSelector": {"matchLabels": {"app": source}}, "topologyKey": "kubernetes.io/os"}
    spec["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(source)
    running_pod(core, source)
    status = finished_migration(custom, start_migration(custom, source))["status"]
    assert (status["phase"], status["targetNode"]) == ("Succeeded", TARGET_NODE), status


def test_timeout_after_checkpoint_rolls_back_and_the_source_keeps_running(api, core, custom, pods, unique):
    source = f"mig-slow-{unique}"
    pods.append(source)
    pod = slow_to_be_ready(core, source)
    create_service(core, source, 8080)
    try:
        # Listed, though not ready (its readiness probe waits an hour).
        wait_for(f"{source} in its Service's endpoints", lambda: service_endpoints(api, source) == {pod.status.pod_ip})
        endpoints = EndpointWatch(api, source)
        before = read_counter(pod.status.pod_ip)
        status = finished_migration(custom, start_migration(custom, source, TARGET_NODE, timeoutSeconds=10))["status"]
        assert_rolled_back(core, status, pod, before, endpoints=endpoints)
    finally:
        core.delete_namespaced_service(source, NAMESPACE)


def in_restoring(custom, name: str) -> None:
    wait_for(
        f"PodMigration {name} in Restoring",
        lambda: (
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name).get("status", {}).get("phase")
            == "Restoring"
        ),
        timeout=60,
    )


def test_operator_restarted_mid_migration_resumes_from_the_status(core, custom, pods, unique):
    source = f"mig-restart-{unique}"
    pods.append(source)
    pod = slow_to_be_ready(core, source)
    before = read_counter(pod.status.pod_ip)
    name = start_migration(custom, source, TARGET_NODE, timeoutSeconds=30)
    in_restoring(custom, name)

    old = operator_pods(core)
    for replica in old:  # every replica at once: a restart of the whole operator
        core.delete_namespaced_pod(replica.metadata.name, OPERATOR_NAMESPACE, grace_period_seconds=0)
    wait_for(
        "a new operator pod Ready",
        lambda: [
            p
            for p in operator_pods(core)
            if p.metadata.uid not in {o.metadata.uid for o in old}
            and p.status.container_statuses
            and p.status.container_statuses[0].ready
        ],
    )

    assert_rolled_back(core, finished_migration(custom, name)["status"], pod, before)


def test_another_replica_takes_over_when_the_leader_dies_mid_migration(core, custom, pods, unique):
    source = f"mig-leader-{unique}"
    pods.append(source)
    pod = slow_to_be_ready(core, source)
    before = read_counter(pod.status.pod_ip)
    name = start_migration(custom, source, TARGET_NODE, timeoutSeconds=40)
    in_restoring(custom, name)
    leader = operator_leader(custom, operator_pods(core))
    core.delete_namespaced_pod(leader, OPERATOR_NAMESPACE, grace_period_seconds=0)  # no goodbye to its peers

    # The migration cannot finish (its replacement never becomes Ready): the replica left must take it over
    # and roll it back at its timeout.
    status = finished_migration(custom, name)["status"]
    assert_rolled_back(core, status, pod, before)
    # The replica left saw the leader's lease lapse and removed its record (kopf's peering): it took over.
    wait_for(
        f"the dead leader {leader} gone from the peering object",
        lambda: leader not in {name for _, name in peers(custom)},
        timeout=120,
    )


def test_read_write_many_claim_moves_with_the_pod(core, custom, pods, unique, claim):
    source = f"mig-rwx-{unique}"
    spec = counter_pod(source, SOURCE_NODE)
    spec["spec"]["volumes"] = [{"name": "shared", "persistentVolumeClaim": {"claimName": claim("ReadWriteMany")}}]
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(source)
    replacement = migrate_and_check(core, custom, source, {"counter": 8080})
    assert [v.persistent_volume_claim.claim_name for v in replacement.spec.volumes if v.persistent_volume_claim] == [
        spec["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    ]
