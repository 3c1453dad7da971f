"""`kubectl migrate drain` keeps kubectl drain's guard: a pod with emptyDir data that cannot migrate is not evicted
without --delete-emptydir-data (the plan of a dry run, so the shared node is not cordoned)."""

from __future__ import annotations

import subprocess

from e2elib import NAMESPACE, SOURCE_NODE, counter_pod, running_pod


def test_drain_refuses_to_evict_emptydir_data_it_cannot_migrate(core, pods, unique):
    name = f"drain-local-{unique}"
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["volumes"] = [
        {"name": "host", "hostPath": {"path": "/tmp", "type": "Directory"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    spec["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "host", "mountPath": "/host"},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    running_pod(core, name)

    def plan(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "kubectl",
                "migrate",
                "drain",
                SOURCE_NODE,
                "--pod-selector",
                f"app={name}",
                "--force",
                "--dry-run",
                *flags,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = plan()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (row,) = [line for line in refused.stdout.splitlines() if name in line]
    assert row.split()[1] == "stay" and "use --delete-emptydir-data" in row, refused.stdout

    allowed = plan("--delete-emptydir-data")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    (row,) = [line for line in allowed.stdout.splitlines() if name in line]
    assert row.split()[1] == "evict", allowed.stdout
    assert not core.read_node(SOURCE_NODE).spec.unschedulable
