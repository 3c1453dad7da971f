"""Garbage collection on the real cluster: a finished PodMigration goes after its ttlSecondsAfterFinished, and a
PodMigration force-deleted mid-flight (its finalizer removed while the operator was down) leaves nothing on any
node after one collection period (the e2e install collects every 5 s)."""

from __future__ import annotations

from e2elib import (
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    OPERATOR_SELECTOR,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    finished_migration,
    leftovers,
    pod_gone,
    read_migration,
    running_pod,
    start_migration,
    wait_for,
)

CRASH_AT, CRASHED_AT = f"{GROUP}/test-crash-at", f"{GROUP}/test-crashed-at"


def test_a_finished_migration_is_deleted_after_its_ttl(core, custom, pods, unique):
    name = f"ttl-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    pods.append(name)
    running_pod(core, name)
    migration = start_migration(custom, name, TARGET_NODE, ttlSecondsAfterFinished=5)
    assert finished_migration(custom, migration)["status"]["phase"] == "Succeeded"
    wait_for(
        f"PodMigration {migration} deleted after its ttl", lambda: read_migration(custom, migration) is None, timeout=60
    )


def test_a_force_deleted_migration_leaves_nothing_on_the_nodes(core, custom, pods, unique):
    name = f"gc-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE, ballast_mb=64))
    pods.append(name)
    pod_uid = running_pod(core, name).metadata.uid
    # The operator exits as the migration enters Transferring: the archives are on the source's disk, and nothing
    # runs the migration until a replica takes over, meanwhile its finalizer is removed and it is deleted.
    migration = start_migration(custom, name, TARGET_NODE, annotations={CRASH_AT: "transferring"})
    wait_for(
        "the operator to exit in Transferring",
        lambda: (
            (read_migration(custom, migration) or {}).get("metadata", {}).get("annotations", {}).get(CRASHED_AT)
            == "transferring"
        ),
        timeout=120,
        interval=0.1,
    )
    uid = read_migration(custom, migration)["metadata"]["uid"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, migration)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, migration, {"metadata": {"finalizers": None}}
    )
    wait_for(f"PodMigration {migration} gone", lambda: read_migration(custom, migration) is None, timeout=30)
    ours = (uid, pod_uid)
    assert any(path.endswith(".tar") for path in leftovers(SOURCE_NODE, *ours)), (
        "no archive to collect: the test is void"
    )
    # Nobody rolls the migration back any more: the source stays frozen and cut off until it is deleted.
    core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    pod_gone(core, name)
    try:
        for node in (SOURCE_NODE, TARGET_NODE):
            wait_for(
                f"nothing left on {node}",
                lambda: (left := leftovers(node, *ours)) == [] or print(node, left),
                timeout=90,
            )
    except AssertionError:
        for pod in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items:
            print(pod.metadata.name, core.read_namespaced_pod_log(pod.metadata.name, OPERATOR_NAMESPACE, tail_lines=60))
        raise
    wait_for(
        "the operator replicas Ready",
        lambda: all(
            s.ready
            for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
            if not p.metadata.deletion_timestamp
            for s in p.status.container_statuses or [False]
        ),
        timeout=300,
    )
