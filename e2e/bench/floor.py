"""Baseline (c), the floor: CRIU dump and restore of the same workload on one node, with no transfer, no image and
no pod, so the difference to our downtime is what the migration adds to what CRIU itself needs (WHAT says exactly
what is measured; the report quotes it)."""

from __future__ import annotations

import json
import time
from pathlib import PurePosixPath

import e2elib as lib

from nodehelper.criu.imagefile import IMG_SERVICE_MAGIC, entries, fields
from nodehelper.criu.stats import STATS_MAGIC, parse_stats_dump

from .cluster import Cluster, run_on, threads
from .prober import Prober
from .results import FLOOR, Measurement
from .workload import START_SECONDS, Serving, Workload

FLOOR_PORT = 18080
WHAT = (
    "the counter (same image, environment and ballast) runs as a plain runc container on the source node, outside"
    " CRI-O and the kubelet, in the node's network namespace, its cgroups under the node's cgroup root; the prober"
    " asks it there directly (no Service). `runc checkpoint` (CRIU dump: freeze, write the images, kill) writes into"
    " a directory on the filesystem of the kubelet's checkpoint archives, then at once `runc restore -d` restores"
    " from it (same node, same container id). Downtime is the prober's, from the last answer before the dump to the"
    " first after the restore: it includes the two runc commands (each started through e2e/cluster/node-exec, a"
    " few ms) but no archive, copy, image build, pod creation, scheduling, Service update or readiness. The node's"
    " /etc/criu/runc.conf applies as to every dump there."
)
RUNC_ROOT = "/run/pm-bench-runc"
BUNDLES = PurePosixPath("/var/lib/kubelet/pm-bench-floor")


def commands(bundle: PurePosixPath, name: str) -> tuple[str, str]:
    """The dump and the restore as run on the node (also quoted in the report)."""
    images = f"--image-path {bundle}/images --work-path {bundle}/work"
    return (
        f"runc --root {RUNC_ROOT} checkpoint {images} {name}",
        f"runc --root {RUNC_ROOT} restore -d {images} --bundle {bundle} {name} </dev/null >/dev/null 2>&1",
    )


def measure(cluster: Cluster, workload: Workload, run: int) -> Measurement:
    name = f"pmb-floor-{workload.tag}-{run}"
    node, bundle = cluster.source, BUNDLES / name
    dump, restore = commands(bundle, name)
    prober = None
    try:
        _start(cluster, workload, name, bundle)
        prober = Prober(cluster.node_ip(node), FLOOR_PORT)
        counter = Serving(name, prober, prober.wait_for("at all", lambda answer: True, START_SECONDS))
        start = time.time()
        run_on(node, dump)
        dumped = time.time()
        run_on(node, f"exec {restore}")
        restored = time.time()
        try:
            done = counter.answered_after(restored).at
        except TimeoutError as exc:
            log = cluster.host_path(node, bundle / "work" / "restore.log").read_text(errors="replace")
            tasks = threads(node, f"$(runc --root {RUNC_ROOT} state {name} | grep '\"pid\"' | tr -dc 0-9)")
            raise TimeoutError(
                f"{exc}; runc restore succeeded, threads (tid state wchan): {tasks}; its log ends: {log[-1500:]}"
            ) from None
        seen = counter.outage(start)
        work = cluster.host_path(node, bundle / "work")
        frozen = parse_stats_dump((work / "stats-dump").read_bytes())["frozen_time"] / 1e6
        criu_restore = _restore_seconds((work / "stats-restore").read_bytes())
    finally:
        if prober:
            prober.stop()
        run_on(
            node,
            f"runc --root {RUNC_ROOT} delete -f {name} >/dev/null 2>&1; "
            f"buildah rm {name} >/dev/null 2>&1; rm -rf {bundle}; rmdir {BUNDLES} 2>/dev/null; true",
        )
    steps = {"runc checkpoint": dumped - start, "runc restore": restored - dumped, "CRIU restore": criu_restore}
    return Measurement(
        FLOOR,
        workload.size_mb,
        workload.pattern,
        run,
        seen.seconds,
        done - start,
        steps,
        frozen,
        seen.wrong,
        seen.state_kept,
    )


def _start(cluster: Cluster, workload: Workload, name: str, bundle: PurePosixPath) -> None:
    """A runc container of the counter image (a buildah working container's mounted root) with the pod's
    environment, started detached with its stdio on /dev/null."""
    node = cluster.source
    rootfs = run_on(
        node,
        f"buildah from -q --name {name} {lib.COUNTER_IMAGE} >/dev/null && "
        f"buildah mount {name} && mkdir -p {bundle} && runc spec --bundle {bundle}",
    ).strip()
    env = {e["name"]: e["value"] for e in workload.pod(name, node)["spec"]["containers"][0]["env"]}
    env.update(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", COUNTER_PORT=str(FLOOR_PORT))
    path = cluster.host_path(node, bundle / "config.json")
    spec = json.loads(path.read_text())
    spec["process"].update(
        terminal=False, args=["python3", "-u", "/app/counter.py"], cwd="/", env=[f"{k}={v}" for k, v in env.items()]
    )
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["hostname"] = name
    # The node's network namespace (sysfs cannot be mounted without one of its own), cgroups under the node's root
    # (e2e/cluster/topology.sh: node_cgroup), beside its kubepods.
    spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/sys")]
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
    spec["linux"]["cgroupsPath"] = f"/pm-{node}/{name}"
    path.write_text(json.dumps(spec))
    run_on(node, f"exec runc --root {RUNC_ROOT} run -d --bundle {bundle} {name} </dev/null >/dev/null 2>&1")


def _restore_seconds(stats: bytes) -> float:
    """CRIU's own restore time from stats-restore (StatsEntry field 2, restore_stats_entry field 4, microseconds)."""
    for entry in entries(stats, (IMG_SERVICE_MAGIC, STATS_MAGIC), "stats-restore"):
        for number, _, value in fields(entry):
            if number == 2 and isinstance(value, bytes):
                return next(v for n, _, v in fields(value) if n == 4) / 1e6
    raise ValueError("stats-restore holds no restore statistics")
