"""Migrations at a time: the ones over a limit wait in Pending, saying why, and then run; a long queue does not
starve another namespace, does not outlast its deadline, and leaves the admission webhooks and the certificate signer
answering."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from e2elib import (
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    TERMINAL,
    VERSION,
    counter_pod,
    read_migration,
    running_pod,
    set_operator_env,
    start_migration,
    wait_for,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

RUNNING = {"Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing"}


#: The chart's values of the settings these tests change (restored afterwards).
CHART_LIMITS = {"PM_MAX_OUTBOUND_PER_NODE": "2", "PM_MAX_PER_CLUSTER": "5", "PM_MAX_PER_NAMESPACE": "5"}


@pytest.fixture
def one_per_node() -> Iterator[None]:
    set_operator_env(PM_MAX_OUTBOUND_PER_NODE="1")
    try:
        yield
    finally:
        set_operator_env(PM_MAX_OUTBOUND_PER_NODE=CHART_LIMITS["PM_MAX_OUTBOUND_PER_NODE"])


def test_over_the_per_node_limit_migrations_wait_their_turn_and_say_why(core, custom, pods, unique, one_per_node):
    names = [f"lim-{i}-{unique}" for i in range(3)]
    for name in names:
        core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
        pods.append(name)
    for name in names:
        running_pod(core, name)
    migrations = [start_migration(custom, name, TARGET_NODE) for name in names]

    seen: dict[str, set[tuple[str, str, str]]] = {m: set() for m in migrations}
    most_at_once = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        statuses = {
            m: custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, m).get("status") or {}
            for m in migrations
        }
        for m, status in statuses.items():
            seen[m].add((status.get("phase", ""), status.get("reason", ""), status.get("message", "")))
        most_at_once = max(most_at_once, sum(s.get("phase") in RUNNING for s in statuses.values()))
        if all(s.get("phase") in TERMINAL for s in statuses.values()):
            break
        time.sleep(0.1)

    assert [max(p for p, _, _ in seen[m] if p in TERMINAL) for m in migrations] == ["Succeeded"] * 3, seen
    assert most_at_once == 1, seen
    queued = [m for m in migrations if any(r == "Queued" for _, r, _ in seen[m])]
    assert len(queued) == 2, seen
    for m in queued:
        assert any(
            p == "Pending" and f"free slot on node {SOURCE_NODE}" in msg and "limit 1 per node" in msg
            for p, r, msg in seen[m]
            if r == "Queued"
        ), seen[m]


QUEUED = 100  # the chart's operator.limits.maxQueuedPerNamespace
PAUSE_AT, PAUSED_AT = "podmigration.dev/test-pause-at", "podmigration.dev/test-paused-at"
HELPER_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"
SIGNER = "podmigration.dev/node-helper"
WEBHOOK_TIMEOUT = 10  # timeoutSeconds of the chart's webhooks


def pod_migration(pod: str, **spec) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PodMigration",
        "metadata": {"generateName": f"{pod}-"},
        "spec": {"podName": pod, "targetNode": TARGET_NODE, **spec},
    }


def status_of(custom, name: str, namespace: str = NAMESPACE) -> dict:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {}


@pytest.fixture
def second_namespace(core, unique) -> Iterator[str]:
    name = f"pm-limits-{unique}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)  # its PodMigration goes with it (rolled back or finished first)


@pytest.fixture
def one_slot_per_namespace(core, custom, unique) -> Iterator[list[str]]:
    """Two migrations at a time in the cluster, one per namespace; yields the list of PodMigrations the test creates
    in NAMESPACE, all deleted (and gone) before the chart's limits come back."""
    created: list[str] = []
    set_operator_env(PM_MAX_PER_CLUSTER="2", PM_MAX_PER_NAMESPACE="1")
    try:
        yield created
    finally:
        for name in created:
            try:
                custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        wait_for(
            "the test's PodMigrations gone",
            lambda: all(read_migration(custom, name) is None for name in created),
            timeout=180,
            interval=1,
        )
        set_operator_env(**{k: CHART_LIMITS[k] for k in ("PM_MAX_PER_CLUSTER", "PM_MAX_PER_NAMESPACE")})


def test_a_long_queue_times_out_starves_no_namespace_and_leaves_webhooks_and_signer_answering(
    core, custom, pods, unique, second_namespace, one_slot_per_namespace
):
    created = one_slot_per_namespace
    slow, cheap, evictee, other = (f"{kind}-{unique}" for kind in ("slow", "cheap", "evictee", "other"))
    for name in (slow, cheap, evictee):
        core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
        pods.append(name)
    core.create_namespaced_pod(second_namespace, counter_pod(other, SOURCE_NODE))
    for name in (slow, cheap, evictee):
        running_pod(core, name)

    # A restore that does not end holds NAMESPACE's one slot.
    created.append(start_migration(custom, slow, TARGET_NODE, annotations={PAUSE_AT: "restoring"}, timeoutSeconds=900))
    wait_for(
        "the slow migration held in Restoring",
        lambda: (
            (read_migration(custom, created[0]) or {}).get("metadata", {}).get("annotations", {}).get(PAUSED_AT)
            == "restoring"
        ),
        timeout=120,
    )
    # 100 queued behind it (all for one pod: a queued migration does not look at its pod), the last with a deadline.
    for i in range(QUEUED):
        spec = {"queueTimeoutSeconds": 20} if i == QUEUED - 1 else {}
        body = pod_migration(cheap, **spec)
        created.append(
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)["metadata"]["name"]
        )
    deadlined = created[-1]

    # The queue is full: the next is refused at creation.
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, pod_migration(cheap))
    assert refused.value.status == 403 and "QueueFull" in refused.value.body, refused.value.body

    # Another namespace's migration takes the free cluster slot at once, ahead of the 100.
    wait_for(
        f"pod {other} Running",
        lambda: core.read_namespaced_pod(other, second_namespace).status.phase == "Running",
        timeout=120,
    )
    theirs = custom.create_namespaced_custom_object(GROUP, VERSION, second_namespace, PLURAL, pod_migration(other))[
        "metadata"
    ]["name"]
    final = wait_for(
        "the second namespace's migration finished",
        lambda: (s := status_of(custom, theirs, second_namespace)).get("phase") in TERMINAL and s,
        timeout=120,
    )
    assert final["phase"] == "Succeeded", final

    # An eviction (of a pod that did not opt in) is answered by the webhook within its timeout.
    began = time.monotonic()
    core.create_namespaced_pod_eviction(
        evictee, NAMESPACE, {"metadata": {"name": evictee, "namespace": NAMESPACE}}, _request_timeout=30
    )
    assert time.monotonic() - began < WEBHOOK_TIMEOUT

    # A restarted node-helper (on a node no migration here uses, if there is one) gets its certificate signed: it
    # comes back Ready with a freshly issued one.
    helpers = core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
    helper = next((p for p in helpers if p.spec.node_name not in (SOURCE_NODE, TARGET_NODE)), helpers[0])
    since = time.time()
    core.delete_namespaced_pod(helper.metadata.name, OPERATOR_NAMESPACE, grace_period_seconds=0)
    wait_for(
        f"a new node-helper Ready on {helper.spec.node_name}",
        lambda: any(
            p.metadata.uid != helper.metadata.uid
            and p.spec.node_name == helper.spec.node_name
            and all(s.ready for s in p.status.container_statuses or [False])
            for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
        ),
        timeout=90,
    )
    signed = [
        csr.metadata.name
        for csr in client.CertificatesV1Api(core.api_client).list_certificate_signing_request().items
        if csr.spec.signer_name == SIGNER
        and csr.status.certificate
        and csr.metadata.creation_timestamp.timestamp() > since - 5
    ]
    assert signed, "no certificate signed for the restarted node-helper"

    # The migration with a deadline gave up, saying how long it waited and behind what; the rest still wait.
    status = wait_for(
        "the deadlined migration failed",
        lambda: (s := status_of(custom, deadlined)).get("phase") in TERMINAL and s,
        timeout=90,
    )
    assert (status["phase"], status["reason"]) == ("Failed", "QueueTimeout"), status
    assert "(queueTimeoutSeconds 20) without a slot; waiting for a free slot in namespace" in status["message"], status
    assert [t["phase"] for t in status["phaseTransitions"]] == ["Pending", "Failed"], status
    assert status_of(custom, created[1]).get("reason") == "Queued"
