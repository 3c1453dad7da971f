"""Migrations through the operator on a real cluster: state continues, sources go, nothing is left behind."""

from __future__ import annotations

from kubernetes import client

from e2elib import (NAMESPACE, SOURCE_NODE, TARGET_NODE, counter_pod, finished_migration, leftovers, pod_gone,
                      read_counter, restored_flags, running_pod, start_migration, wait_for)


def migrate_and_check(core: client.CoreV1Api, custom: client.CustomObjectsApi, source: str,
                      ports: dict[str, int]) -> None:
    """Migrates `source` to TARGET_NODE and asserts what a user relies on, for every container in `ports`."""
    src = running_pod(core, source)
    before = {name: read_counter(src.status.pod_ip, port) for name, port in ports.items()}

    migration = finished_migration(custom, start_migration(custom, source, TARGET_NODE))
    status = migration["status"]
    assert status["phase"] == "Succeeded", status
    assert (status["sourceNode"], status["targetNode"]) == (SOURCE_NODE, TARGET_NODE)
    for key in ("checkpoint", "transfer", "restore", "downtime", "total"):
        assert status["durations"][key] > 0, status["durations"]
    assert status["checkpointBytes"] > 0 and status["transferredBytes"] > 0
    assert [p["phase"] for p in status["phaseTransitions"]] == [
        "Pending", "Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing", "Succeeded"]

    new = running_pod(core, status["targetPod"])
    assert new.spec.node_name == TARGET_NODE
    assert restored_flags(TARGET_NODE, new) == {name: True for name in ports}
    for name, port in ports.items():
        after = read_counter(new.status.pod_ip, port)
        assert after["token"] == before[name]["token"], f"container {name} restarted instead of continuing"
        assert after["count"] >= before[name]["count"], (name, before[name], after)

    pod_gone(core, source)
    assert leftovers(SOURCE_NODE) == [] and leftovers(TARGET_NODE) == []


def test_bare_pod_moves_with_its_memory(core, custom, pods, unique):
    source = f"mig-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)
    migrate_and_check(core, custom, source, {"counter": 8080})


def test_two_containers_keep_their_own_state(core, custom, pods, unique):
    source = f"mig2-{unique}"
    ports = {"first": 8080, "second": 8081}
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE, ports))
    pods.append(source)
    migrate_and_check(core, custom, source, ports)


def test_target_is_picked_when_not_given(core, custom, pods, unique):
    source = f"mig-auto-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)
    running_pod(core, source)
    status = finished_migration(custom, start_migration(custom, source))["status"]
    # The control-plane node is tainted NoSchedule and the source is excluded: the target node is the one left.
    assert (status["phase"], status["targetNode"]) == ("Succeeded", TARGET_NODE), status


def test_timeout_after_checkpoint_rolls_back_and_the_source_keeps_running(core, custom, pods, unique):
    source = f"mig-slow-{unique}"
    spec = counter_pod(source, SOURCE_NODE)
    # The replacement cannot become Ready before the migration's timeout: the rollback path runs after the
    # checkpoint, the transfer and the restore.
    spec["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3600}
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(source)
    pod = running_pod(core, source, ready=False)
    before = read_counter(pod.status.pod_ip)

    status = finished_migration(custom, start_migration(custom, source, TARGET_NODE, timeoutSeconds=10))["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status
    assert "Transferring" in [p["phase"] for p in status["phaseTransitions"]], status["phaseTransitions"]

    after = core.read_namespaced_pod(source, NAMESPACE)
    assert (after.metadata.uid, after.spec.node_name) == (pod.metadata.uid, SOURCE_NODE)
    assert after.metadata.labels == pod.metadata.labels, "the source is still fenced out of its Services"
    first = read_counter(pod.status.pod_ip)
    wait_for("the source counter to move on (thawed)", lambda: read_counter(pod.status.pod_ip)["count"] > first["count"])
    assert first["token"] == before["token"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={source}").items] == [source]
    assert leftovers(SOURCE_NODE) == [] and leftovers(TARGET_NODE) == []
