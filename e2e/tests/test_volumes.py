"""Migrations of pods with emptyDir volumes (node disk and `medium: Memory`): the volume's content moves with the
processes, at the instant of their checkpoint, so the file and the memory of its writer agree on the target."""

from __future__ import annotations

import pytest
from e2elib import (
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    check_sequence,
    emptydir_file,
    finished_migration,
    nothing_left_of_pods,
    pod_gone,
    read_counter,
    restored_flags,
    running_pod,
    seqwriter_pod,
    start_migration,
    wait_for,
)


@pytest.mark.parametrize("medium", ["", "Memory"], ids=["disk", "memory"])
def test_emptydir_moves_with_the_process_that_writes_it(core, custom, pods, unique, medium):
    name = f"vol-{'mem' if medium else 'disk'}-{unique}"
    pods.append(name)
    core.create_namespaced_pod(NAMESPACE, seqwriter_pod(name, SOURCE_NODE, medium))
    pod = running_pod(core, name)
    # A few seconds of history in the file, so that the copy has something to lose.
    before = wait_for(
        "the seqwriter to have written 40 numbers",
        lambda: (lambda r: r if r["count"] >= 40 else None)(read_counter(pod.status.pod_ip)),
        timeout=30,
    )

    status = finished_migration(custom, start_migration(custom, name, TARGET_NODE))["status"]
    assert status["phase"] == "Succeeded", status
    volumes = {v["name"]: v for v in status.get("volumes") or []}
    assert "data" in volumes and volumes["data"]["bytes"] > 0, status.get("volumes")
    new = running_pod(core, status["targetPod"])
    assert new.spec.node_name == TARGET_NODE
    assert restored_flags(TARGET_NODE, new) == {"app": True}

    # The file first, then the process: it counts in memory before it writes, so its count is never below the file.
    last = check_sequence(emptydir_file(TARGET_NODE, new.metadata.uid, "data", "seq.txt"), status["volumes"])
    after = read_counter(new.status.pod_ip)
    assert after["token"] == before["token"], f"the seqwriter restarted instead of continuing: {before} -> {after}"
    assert before["count"] - 1 <= last <= after["count"], (before, last, after)

    # And it goes on writing the same sequence into the moved file.
    def grown() -> int | None:
        now = check_sequence(emptydir_file(TARGET_NODE, new.metadata.uid, "data", "seq.txt"), status["volumes"])
        return now if now >= last + 10 else None

    later = wait_for("the restored seqwriter to keep appending to the moved file", grown, timeout=30)
    final = read_counter(new.status.pod_ip)
    assert final["token"] == before["token"] and final["count"] >= later, (later, final)
    print(
        f"\n{medium or 'disk'} emptyDir: {volumes['data']}, file 1..{last} right after the move, "
        f"1..{later} later; count {after['count']} -> {final['count']}"
    )

    pod_gone(core, name)
    nothing_left_of_pods(core, custom, name)
