"""Migrations through the operator on a real cluster: state continues, sources go, nothing is left behind."""

from __future__ import annotations

from kubernetes import client

from conftest import (NAMESPACE, SOURCE_NODE, TARGET_NODE, counter_pod, finished_migration, leftovers, pod_gone,
                      read_counter, restored_flags, running_pod, start_migration)


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
