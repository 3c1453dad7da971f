"""Migrations of pods with open TCP connections: a Redis written to over one persistent connection through its
Service, a client holding an outbound connection, a rollback after the source's network was cut, and how the source
ends (SIGKILL while frozen: its SIGTERM handler never runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2elib import (
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    PersistentWriter,
    PodWatch,
    check_dataset,
    check_sequence,
    check_writes,
    create_service,
    describe_state,
    emptydir_file,
    finished_migration,
    gate_readiness,
    nothing_left_of_pods,
    open_gate,
    pod_gone,
    populate,
    read_counter,
    redis_ping,
    redis_pod,
    redis_run_id,
    running_pod,
    script_pod,
    seqwriter_pod,
    start_migration,
    start_redis,
    wait_for,
)
from kubernetes import client


@pytest.fixture
def services(core: client.CoreV1Api) -> Iterator[list[str]]:
    """Names of Services a test creates; deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        core.delete_namespaced_service(name, NAMESPACE)


@pytest.fixture
def writers() -> Iterator[list[PersistentWriter]]:
    """PersistentWriters a test starts; stopped afterwards whatever happened."""
    started: list[PersistentWriter] = []
    yield started
    for writer in started:
        writer.stop()


def redis_with_service(core, pods, services, name: str, spec: dict | None = None) -> tuple[client.V1Pod, str]:
    """A Redis pod behind a ClusterIP Service of the same name; returns the pod and the Service IP."""
    spec = spec or redis_pod(name, SOURCE_NODE)
    pods.append(name)
    services.append(name)
    cluster_ip = create_service(core, name, 6379)
    return start_redis(core, spec, ready=not spec["spec"].get("readinessGates")), cluster_ip


def test_redis_with_a_persistent_writer_loses_no_acknowledged_write(core, custom, pods, services, writers, unique):
    name = f"conn-redis-{unique}"
    pod, service_ip = redis_with_service(core, pods, services, name)
    populate(pod.status.pod_ip)
    run_id = redis_run_id(pod.status.pod_ip)
    writer = PersistentWriter(service_ip)
    writers.append(writer)
    writer.start()
    wait_for("the writer's first acknowledged writes", lambda: len(writer.acked) > 50, timeout=30)

    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
    assert status["phase"] == "Succeeded", (status, writer.summary())
    acked_at_cutover = len(writer.acked)
    wait_for(
        "acknowledged writes through the Service after the move",
        lambda: len(writer.acked) > acked_at_cutover + 50,
        timeout=30,
    )
    writer.stop()
    print(
        f"\nRedis with {status.get('checkpointBytes', 0) / 2**20:.0f} MiB checkpoint, downtime "
        f"{status['durations']['downtime']:.2f}s; the writer saw: {writer.summary()}"
    )

    new = running_pod(core, status["targetPod"])
    assert new.spec.node_name == TARGET_NODE
    assert redis_run_id(service_ip) == run_id, f"Redis restarted instead of continuing ({writer.summary()})"
    check_writes(service_ip, writer.acked)
    check_dataset(service_ip)
    assert writer.reconnects >= 1, f"the writer's connection survived the move? {writer.summary()}"
    pod_gone(core, name)
    nothing_left_of_pods(core, custom, name)


def test_outbound_connection_reconnects_after_the_move(core, custom, pods, services, unique):
    server = f"conn-server-{unique}"
    _, service_ip = redis_with_service(core, pods, services, server)
    name = f"conn-link-{unique}"
    pods.append(name)
    core.create_namespaced_pod(
        NAMESPACE, script_pod(name, SOURCE_NODE, "linkclient", {"LINK_ADDR": f"{service_ip}:6379"})
    )
    pod = running_pod(core, name)
    before = wait_for(
        "the client connected and answered",
        lambda: (lambda r: r if r["connects"] >= 1 and r["lastOkAgo"] is not None and r["lastOkAgo"] < 1 else None)(
            read_counter(pod.status.pod_ip)
        ),
        timeout=30,
    )

    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
    assert status["phase"] == "Succeeded", status
    new = running_pod(core, status["targetPod"])
    assert new.spec.node_name == TARGET_NODE
    after = read_counter(new.status.pod_ip)
    assert after["token"] == before["token"], f"the client restarted instead of continuing: {before} -> {after}"
    after = wait_for(
        "the moved client to reconnect by itself and get PONGs again",
        lambda: (
            lambda r: (
                r if r["connects"] > before["connects"] and r["lastOkAgo"] is not None and r["lastOkAgo"] < 1 else None
            )
        )(read_counter(new.status.pod_ip)),
        timeout=30,
    )
    print(f"\nlinkclient before {before}, after {after}")
    assert after["token"] == before["token"]
    pod_gone(core, name)
    nothing_left_of_pods(core, custom, name)


def test_rollback_after_the_network_cut_serves_again(core, custom, pods, services, writers, unique):
    name = f"conn-back-{unique}"
    # The replacement copies the readiness gate and nobody opens it there: it never becomes Ready, so the migration
    # times out in Restoring, while the source (gate open) is Ready and behind its Service before and after.
    pod, service_ip = redis_with_service(core, pods, services, name, gate_readiness(redis_pod(name, SOURCE_NODE)))
    open_gate(core, name)
    pod = running_pod(core, name)
    wait_for(f"Service {name} to reach the Redis", lambda: redis_ping(service_ip), timeout=30)
    run_id = redis_run_id(service_ip)
    writer = PersistentWriter(service_ip)
    writers.append(writer)
    writer.start()
    wait_for("the writer's first acknowledged writes", lambda: len(writer.acked) > 50, timeout=30)

    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE, timeoutSeconds=12))["status"]
    assert (status["phase"], status.get("reason")) == ("Failed", "Timeout"), (status, writer.summary())
    phases = [p["phase"] for p in status["phaseTransitions"]]
    assert "Transferring" in phases and "Restoring" in phases, phases
    acked_at_rollback = len(writer.acked)
    wait_for(
        "acknowledged writes through the Service after the rollback",
        lambda: len(writer.acked) > acked_at_rollback + 50,
        timeout=30,
    )
    writer.stop()
    print(f"\nrollback: the writer saw {writer.summary()}")

    after = core.read_namespaced_pod(name, NAMESPACE)
    assert (after.metadata.uid, after.spec.node_name) == (pod.metadata.uid, SOURCE_NODE)
    assert redis_run_id(service_ip) == run_id, f"the source Redis restarted ({writer.summary()})"
    check_writes(service_ip, writer.acked)
    assert [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items] == [name]
    nothing_left_of_pods(core, custom, name)


def test_source_is_killed_while_frozen(core, custom, pods, unique):
    name = f"conn-kill-{unique}"
    pods.append(name)
    core.create_namespaced_pod(NAMESPACE, seqwriter_pod(name, SOURCE_NODE))
    pod = running_pod(core, name)
    before = read_counter(pod.status.pod_ip)
    watch = PodWatch(core, name)
    try:
        status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
        assert status["phase"] == "Succeeded", status
        final = watch.final_statuses()
    finally:
        watch.close()
    states = {s.name: s.state for s in final}
    assert states["app"].terminated is not None and states["app"].terminated.exit_code == 137, (
        f"the source's container did not end killed by SIGKILL (137; its SIGTERM handler exits 77): "
        f"{describe_state(states['app'])}; events seen: {watch.history}"
    )

    new = running_pod(core, status["targetPod"])
    assert read_counter(new.status.pod_ip)["token"] == before["token"]
    moved = emptydir_file(TARGET_NODE, new.metadata.uid, "data", "seq.txt")
    assert b"SIGTERM" not in moved, "the source's SIGTERM handler ran and its trace was moved"
    check_sequence(moved, status.get("volumes"))
    nothing_left_of_pods(core, custom, name)


def test_sockets_of_every_kind_never_block_the_move(core, custom, pods, unique):
    """IPv6, half-closed and still-connecting TCP sockets are restored closed; the listener, UDP and Unix sockets
    keep working; the same process goes on."""
    name = f"sockets-{unique}"
    core.create_namespaced_pod(NAMESPACE, script_pod(name, SOURCE_NODE, "sockets"))
    pods.append(name)
    before = read_counter(running_pod(core, name, ready=False).status.pod_ip)
    assert before["tcp"] == {
        "established6": "ESTABLISHED",
        "established6-peer": "ESTABLISHED",
        "half-closed": "FIN_WAIT2",
        "half-closed-peer": "CLOSE_WAIT",
        "connecting": "SYN_SENT",
    }
    assert (before["listening"], before["udp"], before["unix"]) == (True, True, True), before

    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
    assert status["phase"] == "Succeeded", status
    after = read_counter(running_pod(core, status["targetPod"], ready=False).status.pod_ip)
    assert after["token"] == before["token"], "the process restarted instead of moving"
    assert set(after["tcp"].values()) == {"CLOSE"}, after
    assert (after["listening"], after["udp"], after["unix"]) == (True, True, True), after
