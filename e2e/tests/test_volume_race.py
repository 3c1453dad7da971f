"""A writer the freeze does not hold swaps a directory of the migrated pod's emptyDir for a symlink to another pod's
Secret while the source helper copies the volume (issue 15, F1). The writer waits, through inotify, until the helper
opens the large decoy in `d`, then turns `d` into the link: a copy that resolves paths reads the neighbour's Secret
next (`d/secret`) and ships it into the replacement. Two writers: a process on the node (the copy itself must not
follow the link), and the tenant's own, an ephemeral container added while the pod is frozen (the kubelet starts it
in about a second, unfrozen: the copy must not run at all). With the helper before the fd walk and the freeze
check, the first shipped the Secret into the replacement's `d/secret`, the second migrated with the ephemeral
container running during the copy."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from e2elib import (
    COUNTER_IMAGE,
    GROUP,
    NAMESPACE,
    NODE_EXEC,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    describe_state,
    finished_migration,
    node_exec,
    nothing_left_of_pods,
    running_pod,
    seqwriter_pod,
    start_migration,
    wait_for,
)
from kubernetes import client

PAUSE_AT, PAUSED_AT = f"{GROUP}/test-pause-at", f"{GROUP}/test-paused-at"

VOLUMES = "/var/lib/kubelet/pods/{uid}/volumes"

#: Runs on the source node: `d` becomes a link to argv[2] for two seconds each time the decoy is opened or read.
ATTACKER = r"""
import ctypes, os, sys, time
d, target = sys.argv[1] + "/d", sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
assert fd >= 0 and libc.inotify_add_watch(fd, (d + "/a-decoy").encode(), 0x1 | 0x20) >= 0  # IN_ACCESS | IN_OPEN
print("watching", flush=True)
while True:
    try:
        os.read(fd, 65536)
    except BlockingIOError:
        time.sleep(0.0005)
        continue
    try:
        os.rename(d, d + ".real")
    except FileNotFoundError:
        break  # the volume is gone with its pod
    os.symlink(target, d)
    print("swapped", flush=True)
    time.sleep(2)
    os.unlink(d)
    os.rename(d + ".real", d)
    while True:
        try:
            os.read(fd, 65536)
        except BlockingIOError:
            break
"""


@dataclass
class Race:
    victim: str
    volume: str  # the victim's emptyDir `data` on the source node
    loot: str  # a directory of the neighbour's Secret volume holding the plain file `secret`
    sentinel: str


@pytest.fixture
def race(core, pods, unique) -> Iterator[Race]:
    """A neighbour pod with a Secret and the victim (a seqwriter) on the source node; the victim's volume holds
    `d/a-decoy` (32 MiB) and `d/secret` (its own data)."""
    sentinel = f"neighbour-secret-{unique}-must-never-move"
    secret = f"vol-race-{unique}"
    core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": secret}, "data": {"secret": base64.b64encode(sentinel.encode()).decode()}}
    )
    try:
        neighbour_name, victim_name = f"vol-race-nb-{unique}", f"vol-race-{unique}"
        pods += [neighbour_name, victim_name]
        neighbour = counter_pod(neighbour_name, SOURCE_NODE)
        neighbour["spec"]["volumes"] = [{"name": "loot", "secret": {"secretName": secret}}]
        neighbour["spec"]["containers"][0]["volumeMounts"] = [{"name": "loot", "mountPath": "/loot"}]
        core.create_namespaced_pod(NAMESPACE, neighbour)
        core.create_namespaced_pod(NAMESPACE, seqwriter_pod(victim_name, SOURCE_NODE))
        neighbour_uid = running_pod(core, neighbour_name).metadata.uid
        volume = VOLUMES.format(uid=running_pod(core, victim_name).metadata.uid) + "/kubernetes.io~empty-dir/data"
        # The Secret volume's ..data directory holds the plain file `secret` (the top-level name is a link).
        loot = VOLUMES.format(uid=neighbour_uid) + "/kubernetes.io~secret/loot/..data"
        assert node_exec(SOURCE_NODE, "cat", f"{loot}/secret").decode() == sentinel
        node_exec(
            SOURCE_NODE,
            "sh",
            "-c",
            f"mkdir {volume}/d && head -c 32M /dev/zero > {volume}/d/a-decoy && "
            f"echo the pod\\'s own data > {volume}/d/secret",
        )
        yield Race(victim_name, volume, loot, sentinel)
    finally:
        core.delete_namespaced_secret(secret, NAMESPACE)


def assert_nothing_leaked(core, custom, race: Race, status: dict[str, Any]) -> None:
    """A replacement holds the pod's own `d/secret`, none of the neighbour's; no archive or image is left."""
    if status["phase"] == "Succeeded":
        new = running_pod(core, status["targetPod"])
        moved = VOLUMES.format(uid=new.metadata.uid) + "/kubernetes.io~empty-dir/data"
        # grep -r follows no link below its argument: what it reads is what the unpack wrote.
        found = node_exec(TARGET_NODE, "grep", "-r", "-l", race.sentinel, moved, check=False)
        assert found == b"", f"the neighbour's Secret arrived in the replacement: {found!r}"
        assert node_exec(TARGET_NODE, "cat", f"{moved}/d/secret") == b"the pod's own data\n"
    nothing_left_of_pods(core, custom, race.victim)


def test_a_directory_swapped_for_a_link_during_the_copy_ships_nothing_of_the_node(core, custom, race):
    """The writer is a process on the source node: the copy runs, and must not follow the link."""
    attacker = subprocess.Popen(
        [*NODE_EXEC.format(node=SOURCE_NODE).split(), "python3", "-c", ATTACKER, race.volume, race.loot],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert attacker.stdout is not None and attacker.stdout.readline().strip() == "watching"
        status = finished_migration(custom, start_migration(custom, race.victim, TARGET_NODE))["status"]
    finally:
        attacker.kill()
        attacker.wait()
    swapped = attacker.stdout.read().count("swapped")
    print(f"\nthe writer swapped d {swapped} time(s); migration {status['phase']}: {status.get('message')}")
    assert swapped >= 1, "the helper never opened the decoy: the race was not run"
    if status["phase"] != "Succeeded":  # the copy saw the change and gave up: the source keeps running
        assert status["phase"] == "Failed" and "changed while" in (status.get("message") or ""), status
        assert running_pod(core, race.victim).spec.node_name == SOURCE_NODE
    assert_nothing_leaked(core, custom, race, status)


def test_an_ephemeral_container_started_after_the_freeze_stops_the_copy(core, custom, race):
    """The tenant's own writer: `kubectl debug` on the pod once it is frozen (held there by the test-only pause
    point `frozen`). The kubelet starts the ephemeral container in its own cgroup, which the freeze did not see;
    the helper refuses to copy while it runs and the migration rolls back, the pod running where it was. (An
    admission rule that refuses ephemeral containers on a migrating pod is the other defence: then nothing runs.)"""
    name = start_migration(custom, race.victim, TARGET_NODE, annotations={PAUSE_AT: "frozen"})

    def annotations() -> dict[str, str]:
        return (
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)["metadata"].get("annotations")
            or {}
        )

    wait_for("the migration to hold with the source frozen", lambda: annotations().get(PAUSED_AT) == "frozen")
    debugger = {
        "name": "debugger",
        "image": COUNTER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-c", ATTACKER, "/data", race.loot],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    try:
        core.patch_namespaced_pod_ephemeralcontainers(
            race.victim, NAMESPACE, {"spec": {"ephemeralContainers": [debugger]}}
        )
        admitted = True
    except client.ApiException as exc:
        assert exc.status in (400, 403, 422) and "podmigration" in (exc.body or ""), exc
        print(f"\nadmission refused the ephemeral container: {exc.body}")
        admitted = False
    if admitted:

        def debugger_running() -> bool:
            statuses = core.read_namespaced_pod(race.victim, NAMESPACE).status.ephemeral_container_statuses or []
            return any(s.name == "debugger" and describe_state(s.state) == "running" for s in statuses)

        wait_for("the ephemeral container to run while the pod is frozen", debugger_running, timeout=60)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name, {"metadata": {"annotations": {PAUSE_AT: None}}}
    )
    status = finished_migration(custom, name)["status"]
    print(f"\nmigration {status['phase']}: {status.get('message')}")
    if admitted:
        assert status["phase"] == "Failed" and "not frozen" in (status.get("message") or ""), status
        assert running_pod(core, race.victim).spec.node_name == SOURCE_NODE
    assert_nothing_leaked(core, custom, race, status)
