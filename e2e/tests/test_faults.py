"""Faults during migrations: the operator killed at every point, node-helpers killed mid-transfer, the target's kubelet
stopped while restoring, the PodMigration deleted in every phase. Afterwards exactly one copy of each workload serves,
through its Service and with the memory it had; each migration ended with a reason (or, deleted, is gone); nothing is
left on the nodes (archives, partial uploads, checkpoint images, frozen cgroups).

The exact points come from the operator's test-only fault injection (operator/podmigration/faults.py; `make e2e`
installs with it on): the annotation test-crash-at makes the operator exit there once, test-pause-at holds the
migration there.
Independent migrations run at once; the operator's limits queue what does not fit.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

import pytest
from e2elib import (
    ARCHIVES,
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    OPERATOR_SELECTOR,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    cluster_leftovers,
    counter_pod,
    create_service,
    finished_migration,
    node_exec,
    nothing_left_on_nodes,
    read_counter,
    read_migration,
    running_pod,
    service_endpoints,
    start_migration,
    wait_for,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

CRASH_AT, CRASHED_AT, PAUSE_AT, PAUSED_AT, FAIL_AT = (
    f"{GROUP}/test-{key}" for key in ("crash-at", "crashed-at", "pause-at", "paused-at", "fail-at")
)
CANCEL = f"{GROUP}/cancel"
#: Every phase boundary (named by the phase entered), after the kubelet checkpoint (before its status write), after
#: the replacement's create (before anything records it).
CRASH_POINTS = [
    "pending",
    "preparing",
    "checkpointing",
    "checkpointed",
    "transferring",
    "restoring",
    "replacement-created",
    "finalizing",
]
HELPER_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"


@pytest.fixture(scope="module", autouse=True)
def fault_injection_on(apps) -> None:
    """Without it the annotations do nothing and every test would wait for a crash that never comes."""
    operator = apps.read_namespaced_deployment("podmigration-operator", OPERATOR_NAMESPACE)
    env = {e.name: e.value for c in operator.spec.template.spec.containers for e in c.env or []}
    if env.get("PM_FAULT_INJECTION") != "true":
        pytest.fail(
            "the operator runs without its test-only fault points: install with"
            " `PM_FAULT_INJECTION=true make install` (`make e2e` does)"
        )


@dataclass
class Workload:
    name: str
    node: str
    uid: str
    service_ip: str
    token: str

    @property
    def other_node(self) -> str:
        return TARGET_NODE if self.node == SOURCE_NODE else SOURCE_NODE


@pytest.fixture
def workloads(core, custom, pods, unique):
    """workloads(prefix, count, ballast_mb=0): counters alternately on both workers, each behind its own Service."""
    services: list[str] = []

    def make(prefix: str, count: int, ballast_mb: int = 0, nodes: tuple[str, ...] = (SOURCE_NODE, TARGET_NODE)):
        names = [f"{prefix}{i}-{unique}" for i in range(count)]
        ips = {}
        for i, name in enumerate(names):
            core.create_namespaced_pod(NAMESPACE, counter_pod(name, nodes[i % len(nodes)], ballast_mb=ballast_mb))
            pods.append(name)
            ips[name] = create_service(core, name, 8080)
            services.append(name)
        made = []
        for name in names:
            pod = running_pod(core, name, timeout=180)
            made.append(
                Workload(name, pod.spec.node_name, pod.metadata.uid, ips[name], read_counter(ips[name])["token"])
            )
        return made

    yield make
    # A failed test may leave migrations held at a point: end them first (their rollback thaws and unfences), then
    # delete by name too, since a source left fenced has lost the label the `pods` fixture deletes by.
    held = [
        m["metadata"]["name"]
        for m in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        if m["metadata"]["name"].rsplit("-", 1)[0] in services
    ]
    for name in held:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    wait_for(
        "the test's PodMigrations gone", lambda: all(read_migration(custom, name) is None for name in held), timeout=120
    )
    for name in services:
        core.delete_namespaced_service(name, NAMESPACE)
        try:
            core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise


def migrate(custom, w: Workload, annotations: dict[str, str], **spec) -> str:
    return start_migration(custom, w.name, w.other_node, annotations=annotations, **spec)


def paused(custom, name: str, point: str) -> dict:
    return wait_for(
        f"PodMigration {name} paused at {point}",
        lambda: (
            m
            if (m := read_migration(custom, name)) and m["metadata"].get("annotations", {}).get(PAUSED_AT) == point
            else None
        ),
        timeout=180,
        interval=0.2,
    )


def resume(custom, name: str) -> None:
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name, {"metadata": {"annotations": {PAUSE_AT: None}}}
    )


def copies(core, w: Workload) -> list[client.V1Pod]:
    """Every pod of the workload, fenced (selector labels off) or terminating included: the source keeps its name,
    a replacement is <name>-<suffix>."""
    return [
        p
        for p in core.list_namespaced_pod(NAMESPACE).items
        if p.metadata.name == w.name or p.metadata.name.startswith(f"{w.name}-")
    ]


def serves_once(core, w: Workload, moved: bool | None) -> client.V1Pod:
    """Exactly one copy is left, on the node `moved` says, and it answers through the Service with the same
    process (its per-process token)."""
    (pod,) = wait_for(
        f"exactly one copy of {w.name}", lambda: found if len(found := copies(core, w)) == 1 else None, timeout=120
    )
    if moved is not None:
        assert (pod.metadata.uid != w.uid) == moved, (w.name, pod.metadata.name, pod.spec.node_name)
    assert pod.spec.node_name == (w.other_node if pod.metadata.uid != w.uid else w.node)
    assert read_counter(w.service_ip)["token"] == w.token, f"{w.name} answers as another process"
    return pod


def nothing_left(api, ws: list[Workload], migrations: list[str]) -> None:
    """Nothing of these workloads and migrations (uids) is left on either node or in the cluster."""
    nothing_left_on_nodes(client.CoreV1Api(api), *[w.uid for w in ws], *[w.name for w in ws], *migrations)
    names = [w.name for w in ws]
    wait_for(
        "nothing left in the cluster", lambda: (left := cluster_leftovers(api, names)) == [] or print(left), timeout=60
    )


def operator_ready(core) -> None:
    """Both replicas Ready again (crash-looping replicas back), so the next test starts from a working operator."""

    def ready() -> bool:
        found = [
            p
            for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
            if not p.metadata.deletion_timestamp
        ]
        return len(found) >= 2 and all(s.ready for p in found for s in p.status.container_statuses or [False])

    wait_for("the operator replicas Ready", ready, timeout=300, interval=1)


def test_operator_killed_at_every_point_resumes_each_migration(api, core, custom, workloads):
    ws = workloads("fc", len(CRASH_POINTS))
    names = {point: migrate(custom, w, {CRASH_AT: point}, timeoutSeconds=900) for point, w in zip(CRASH_POINTS, ws)}
    uids = []
    for (point, name), w in zip(names.items(), ws):
        migration = finished_migration(custom, name, timeout=600)
        uids.append(migration["metadata"]["uid"])
        assert migration["metadata"]["annotations"].get(CRASHED_AT) == point, f"no crash at {point}"
        status = migration["status"]
        assert (point, status["phase"], status["reason"]) == (point, "Succeeded", "Succeeded"), status["message"]
        serves_once(core, w, moved=True)
    nothing_left(api, ws, uids)
    operator_ready(core)


PHASES = ["Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing", "Pending"]  # Pending last: a
# waiting migration holds back younger ones


def test_pod_migration_deleted_in_every_phase(api, core, custom, workloads):
    ws = workloads("fd", len(PHASES))
    names = {phase: migrate(custom, w, {PAUSE_AT: phase.lower()}) for phase, w in zip(PHASES, ws)}
    waiting = dict(names)
    uids = [read_migration(custom, name)["metadata"]["uid"] for name in names.values()]

    def delete_the_paused() -> bool:
        """Delete each migration once it holds in its phase; some wait for a slot until others are gone."""
        for phase, name in list(waiting.items()):
            migration = read_migration(custom, name)
            if (
                migration["metadata"].get("annotations", {}).get(PAUSED_AT) == phase.lower()
                and migration["status"]["phase"] == phase
            ):
                custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
                del waiting[phase]
        return not waiting

    wait_for("each PodMigration held in its phase and deleted", delete_the_paused, timeout=240)
    for phase, w in zip(PHASES, ws):
        wait_for(
            f"PodMigration {names[phase]} (deleted in {phase}) gone",
            lambda: read_migration(custom, names[phase]) is None,
            timeout=180,
        )
        # Before Finalizing a deletion rolls back to the source; from Finalizing on the replacement already serves.
        serves_once(core, w, moved=phase == "Finalizing")
    nothing_left(api, ws, uids)


def helper_container(core, node: str) -> str:
    pod = next(
        p
        for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
        if p.spec.node_name == node and not p.metadata.deletion_timestamp
    )
    return pod.status.container_statuses[0].container_id.split("://", 1)[1]


def helpers_ready(core) -> None:
    wait_for(
        "every node-helper Ready",
        lambda: all(
            s.ready
            for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
            for s in p.status.container_statuses or [False]
        ),
        timeout=120,
    )


def upload_under_way(node: str, uid: str) -> bool:
    """A partial archive of this migration is being written on the node: the transfer streams."""
    out = node_exec(node, "sh", "-c", f"ls -A {ARCHIVES} | grep '^\\.{uid}-.*\\.part$' || true")
    return bool(out.strip())


@pytest.mark.parametrize("side", ["source", "target"])
def test_node_helper_killed_during_the_transfer(api, core, custom, workloads, side):
    # Enough memory that the transfer takes a while (half of it random, so it does not compress away).
    (w,) = workloads(f"fh{side[0]}", 1, ballast_mb=384, nodes=(SOURCE_NODE,))
    name = migrate(custom, w, {PAUSE_AT: "transferring"})
    uid = paused(custom, name, "transferring")["metadata"]["uid"]
    victim = w.node if side == "source" else w.other_node
    container = helper_container(core, victim)
    resume(custom, name)
    wait_for(
        "the archive streaming to the target", lambda: upload_under_way(w.other_node, uid), timeout=60, interval=0.05
    )
    node_exec(victim, "crictl", "stop", "--timeout", "0", container)  # SIGKILL, mid-stream
    # The operator waits for the helper to come back and sends the archive again from the source's disk.
    status = finished_migration(custom, name, timeout=300)["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Succeeded"), status
    serves_once(core, w, moved=True)
    helpers_ready(core)
    nothing_left(api, [w], [uid])


def kubelet_signal(node: str, sig: signal.Signals) -> None:
    """Stop (SIGSTOP) or continue (SIGCONT) a node's kubelet: its containers keep running, nothing of the node is
    managed any more. On this cluster every node's kubelet is a process of the host, told apart by its node name."""
    node_exec(node, "sh", "-c", f"kill -{sig.name[3:]} $(pgrep -f -- '^kubelet .*--hostname-override {node} ')")


def test_target_kubelet_stopped_during_restoring(api, core, custom, workloads):
    (w,) = workloads("fk", 1, nodes=(SOURCE_NODE,))
    name = migrate(custom, w, {PAUSE_AT: "restoring"}, timeoutSeconds=30)
    uid = paused(custom, name, "restoring")["metadata"]["uid"]
    kubelet_signal(w.other_node, signal.SIGSTOP)
    try:
        resume(custom, name)
        # The replacement cannot start; at the timeout the rollback finds the target node NotReady (no heartbeat),
        # kills what the replacement may run there through the helper, force-deletes it and resumes the source.
        status = finished_migration(custom, name, timeout=300)["status"]
    finally:
        kubelet_signal(w.other_node, signal.SIGCONT)
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status
    # The replacement existed on the stopped node: deleting it could not finish there, so it was force-deleted.
    forced = core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={status['targetPod']},reason=ReplacementForceDeleted"
    ).items
    assert forced and w.other_node in forced[0].message, [
        e.reason
        for e in core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={status['targetPod']}"
        ).items
    ]
    serves_once(core, w, moved=False)
    wait_for(
        f"node {w.other_node} Ready again",
        lambda: any(c.type == "Ready" and c.status == "True" for c in core.read_node(w.other_node).status.conditions),
        timeout=120,
    )
    helpers_ready(core)
    nothing_left(api, [w], [uid])


def test_a_failure_inside_checkpointing_rolls_back_to_the_source_in_its_service(api, core, custom, workloads):
    """Held right after the first dump (fenced, cut off, dumped), the source is out of its Service's endpoints; then
    the step fails there, and the rollback puts the same process back into its Service with its memory."""
    (w,) = workloads("fr", 1, nodes=(SOURCE_NODE,))
    ip = core.read_namespaced_pod(w.name, NAMESPACE).status.pod_ip
    assert service_endpoints(api, w.name) == {ip}
    name = migrate(custom, w, {PAUSE_AT: "checkpointed", FAIL_AT: "checkpointed"})
    held = paused(custom, name, "checkpointed")
    assert held["status"]["phase"] == "Checkpointing"
    wait_for(
        f"{w.name} out of its Service's endpoints (fenced)", lambda: service_endpoints(api, w.name) == set(), timeout=60
    )
    with pytest.raises(AssertionError, match="timed out"):
        read_counter(ip, timeout=3)  # and cut off the network
    resume(custom, name)
    status = finished_migration(custom, name)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "CheckpointingFailed"), status
    assert "fault injection: failed at checkpointed" in status["message"]
    assert [p["phase"] for p in status["phaseTransitions"]][-2:] == ["Checkpointing", "Failed"]
    pod = serves_once(core, w, moved=False)  # the same process answers through the Service
    assert pod.metadata.labels == {"app": w.name} and not {CANCEL, f"{GROUP}/fenced-by"} & set(
        pod.metadata.annotations or {}
    )
    wait_for(f"{w.name} back in its Service's endpoints", lambda: service_endpoints(api, w.name) == {ip}, timeout=60)
    first = read_counter(w.service_ip)
    wait_for("the source counter to move on (thawed)", lambda: read_counter(w.service_ip)["count"] > first["count"])
    nothing_left(api, [w], [held["metadata"]["uid"]])
