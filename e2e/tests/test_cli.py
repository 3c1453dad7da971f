"""`kubectl migrate` as a user runs it: kubectl finds the kubectl-migrate plugin on PATH."""

from __future__ import annotations

import subprocess

from e2elib import (GROUP, NAMESPACE, PLURAL, SOURCE_NODE, TARGET_NODE, VERSION, assert_rolled_back, counter_pod,
                    finished_migration, read_counter, running_pod, slow_to_be_ready, wait_for)


def kubectl_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "migrate", *args, "-n", NAMESPACE], capture_output=True, text=True, timeout=300)


def migration_names(custom) -> set[str]:
    return {m["metadata"]["name"] for m in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]}


def test_dry_run_reports_without_creating_anything(core, custom, pods, unique):
    name = f"cli-dry-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    pods.append(name)
    running_pod(core, name)
    before = migration_names(custom)

    ok = kubectl_migrate(name, "--to", TARGET_NODE, "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert f"can migrate from {SOURCE_NODE} to {TARGET_NODE}" in ok.stdout

    blocked = kubectl_migrate(name, "--to", SOURCE_NODE, "--dry-run")
    assert blocked.returncode == 1
    assert "SameNode" in blocked.stdout

    assert migration_names(custom) == before
    assert core.read_namespaced_pod(name, NAMESPACE).spec.node_name == SOURCE_NODE


def test_migrate_shows_progress_and_exit_status(core, custom, pods, unique):
    name = f"cli-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    pods.append(name)
    before = read_counter(running_pod(core, name).status.pod_ip)

    done = kubectl_migrate(name, "--to", TARGET_NODE)
    assert done.returncode == 0, done.stdout + done.stderr
    for phase in ("Checkpointing", "Restoring", "Succeeded"):
        assert phase in done.stdout, done.stdout
    assert "downtime" in done.stdout and "now runs as" in done.stdout

    moved = [p for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items
             if p.spec.node_name == TARGET_NODE]
    assert len(moved) == 1
    assert read_counter(running_pod(core, moved[0].metadata.name).status.pod_ip)["token"] == before["token"]

    listing = kubectl_migrate("list")
    assert listing.returncode == 0 and name in listing.stdout

    failed = kubectl_migrate(f"no-such-pod-{unique}", "--to", TARGET_NODE)
    assert failed.returncode == 1
    assert "PodNotFound" in failed.stdout + failed.stderr


def test_cancel_rolls_back_a_migration_under_way(core, custom, pods, unique):
    name = f"cli-cancel-{unique}"
    pods.append(name)
    pod = slow_to_be_ready(core, name)
    before = read_counter(pod.status.pod_ip)
    started = kubectl_migrate(name, "--to", TARGET_NODE, "--no-wait")
    assert started.returncode == 0, started.stderr
    (migration,) = [m for m in migration_names(custom) if m.startswith(f"{name}-")]
    wait_for(f"PodMigration {migration} in Restoring", lambda: custom.get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, migration).get("status", {}).get("phase") == "Restoring", timeout=60)

    cancel = kubectl_migrate("cancel", migration)
    assert cancel.returncode == 0, cancel.stderr
    status = finished_migration(custom, migration)["status"]
    assert_rolled_back(core, status, pod, before, outcome=("Cancelled", "Cancelled"))
