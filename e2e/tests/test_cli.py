"""`kubectl migrate` as a user runs it: kubectl finds the kubectl-migrate plugin on PATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from e2elib import (
    GROUP,
    NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    assert_rolled_back,
    counter_pod,
    finished_migration,
    read_counter,
    running_pod,
    slow_to_be_ready,
    wait_for,
)

#: The CLI's output unbuffered, so a test reads each phase line as it is printed.
UNBUFFERED = {**os.environ, "PYTHONUNBUFFERED": "1"}


def kubectl_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "migrate", *args, "-n", NAMESPACE], capture_output=True, text=True, timeout=300)


def migration_names(custom) -> set[str]:
    return {
        m["metadata"]["name"] for m in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    }


def test_dry_run_reports_without_creating_anything(core, custom, running_counter, unique):
    name = f"cli-dry-{unique}"
    running_counter(name)
    before = migration_names(custom)

    ok = kubectl_migrate(name, "--to", TARGET_NODE, "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert f"can migrate from {SOURCE_NODE} to {TARGET_NODE}" in ok.stdout

    blocked = kubectl_migrate(name, "--to", SOURCE_NODE, "--dry-run")
    assert blocked.returncode == 1
    assert "SameNode" in blocked.stdout

    assert migration_names(custom) == before
    assert core.read_namespaced_pod(name, NAMESPACE).spec.node_name == SOURCE_NODE


def test_migrate_shows_progress_and_exit_status(core, custom, running_counter, unique):
    name = f"cli-{unique}"
    before = read_counter(running_counter(name).status.pod_ip)

    done = kubectl_migrate(name, "--to", TARGET_NODE)
    assert done.returncode == 0, done.stdout + done.stderr
    for phase in ("Checkpointing", "Restoring", "Succeeded"):
        assert phase in done.stdout, done.stdout
    assert "downtime" in done.stdout and "now runs as" in done.stdout

    moved = [
        p
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items
        if p.spec.node_name == TARGET_NODE
    ]
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
    wait_for(
        f"PodMigration {migration} in Restoring",
        lambda: (
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, migration)
            .get("status", {})
            .get("phase")
            == "Restoring"
        ),
        timeout=60,
    )

    cancel = kubectl_migrate("cancel", name)  # by the pod's name
    assert migration in cancel.stdout
    assert cancel.returncode == 0, cancel.stderr
    status = finished_migration(custom, migration)["status"]
    assert_rolled_back(core, status, pod, before, outcome=("Cancelled", "Cancelled"))


def test_ctrl_c_leaves_the_migration_going_and_status_w_follows_it_again(core, custom, pods, unique):
    name = f"cli-int-{unique}"
    spec = counter_pod(name, SOURCE_NODE)
    # Ready only 15 s after it starts, the replacement too: the migration then waits that long in Restoring, so it
    # is surely under way when Ctrl-C comes (with a fast move, a CLI slow to start could see it end first).
    spec["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": 8080},
        "initialDelaySeconds": 15,
        "periodSeconds": 1,
    }
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    running_pod(core, name)
    # As from a terminal: a suite started in the background (`cmd &` in a script) inherits SIGINT ignored, and
    # Python keeps it ignored, so Ctrl-C would do nothing.
    cli = subprocess.Popen(
        ["kubectl", "migrate", name, "--to", TARGET_NODE, "-n", NAMESPACE],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=UNBUFFERED,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    created = cli.stdout.readline()
    first_phase = cli.stdout.readline()
    assert "created" in created and first_phase.split()[1:2] in (["Pending"], ["Preparing"]), created + first_phase
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 130, err
    assert "Traceback" not in err and "the migration goes on; follow it with: kubectl migrate status" in err

    again = kubectl_migrate("status", name, "-w")  # by the pod's name: its newest migration
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Succeeded" in again.stdout and "now runs as" in again.stdout
    shown = json.loads(kubectl_migrate("status", name, "-o", "json").stdout)
    assert shown["status"]["phase"] == "Succeeded" and shown["status"]["transferredBytes"] > 0


def test_a_pod_named_list_migrates_and_completion_names_it(core, custom, pods):
    core.create_namespaced_pod(NAMESPACE, counter_pod("list", SOURCE_NODE))
    pods.append("list")
    running_pod(core, "list")
    completed = subprocess.run(
        ["kubectl", "__complete", "migrate", "pod", "-n", NAMESPACE, "li"], capture_output=True, text=True, timeout=60
    )
    assert "list" in completed.stdout.splitlines(), completed.stdout + completed.stderr

    done = kubectl_migrate("pod", "list", "--to", TARGET_NODE, "-o", "name")
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = done.stdout.splitlines()  # -o name: only the PodMigration's name on stdout
    assert line.startswith(f"podmigration.{GROUP}/list-")
    assert finished_migration(custom, line.split("/")[1])["status"]["phase"] == "Succeeded"
