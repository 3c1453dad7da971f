"""Baseline (a), the manual recipe: what a person does with stock tools, one step after the other.

1. checkpoint through the source kubelet's API (POST /checkpoint/<ns>/<pod>/<container>); the container keeps
   running, so it is stopped at once on the node (`crictl stop -t 0`) and its pod deleted: what it does after
   the checkpoint is lost anyway (the answers it gives then are wrong, see prober.outage);
2. copy the archive to the target node (a plain copy between the nodes' directories on this host);
3. build a checkpoint image on the target with buildah (from scratch, add the archive, the CRI-O annotation naming
   the container, commit);
4. create a pod on the target with that image; CRI-O restores it.
The node's /etc/criu/runc.conf (written by the node-helper: tcp-close, skip-in-flight) applies to this checkpoint
too, as to every runc dump on the node."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import PurePosixPath

import e2elib as lib

from nodehelper.criu.stats import read_dump_stats

from .cluster import Cluster, run_on
from .results import MANUAL, Measurement
from .workload import Workload, serving

CONTAINER = "counter"
TARGET_DIR = PurePosixPath("/var/lib/kubelet/pm-bench")
ANNOTATION = "io.kubernetes.cri-o.annotations.checkpoint.name"
IMAGES = "localhost/pm-bench-checkpoint"


def build_script(archive: PurePosixPath, working: str, image: str) -> str:
    """The buildah commands of step 3, as run on the target (also quoted in the report)."""
    return (
        f"buildah from --name {working} scratch && buildah add {working} {archive} / && "
        f"buildah config --annotation={ANNOTATION}={CONTAINER} {working} && "
        f"buildah commit -q {working} {image} && buildah rm {working}"
    )


def measure(cluster: Cluster, workload: Workload, run: int) -> Measurement:
    name = f"pmb-manual-{workload.tag}-{run}"
    image = f"{IMAGES}/{name}:latest"
    copy = TARGET_DIR / f"{name}.tar"
    archive = None
    try:
        with serving(cluster, name, workload) as counter:
            start = time.time()
            archive = cluster.kubelet_checkpoint(cluster.source, name, CONTAINER)
            checkpointed = time.time()
            source = cluster.core.read_namespaced_pod(name, lib.NAMESPACE).status.container_statuses[0]
            lib.node_exec(cluster.source, "crictl", "stop", "-t", "0", source.container_id.split("://", 1)[1])
            cluster.core.delete_namespaced_pod(name, lib.NAMESPACE, grace_period_seconds=0)
            cluster.host_path(cluster.target, TARGET_DIR).mkdir(exist_ok=True)
            shutil.copyfile(cluster.host_path(cluster.source, archive), cluster.host_path(cluster.target, copy))
            copied = time.time()
            run_on(cluster.target, build_script(copy, name, image))
            built = time.time()
            restored = workload.pod(f"{name}-r", cluster.target, app=name)
            restored["spec"]["containers"][0].update(image=image, imagePullPolicy="Never")
            cluster.core.create_namespaced_pod(lib.NAMESPACE, restored)
            done = counter.answered_after(built).at
            seen = counter.outage(start)
            frozen = read_dump_stats(cluster.host_path(cluster.source, archive))["frozen_time"] / 1e6
    finally:
        _clean(cluster, name, image, archive, copy)
    steps = {
        "checkpoint": checkpointed - start,
        "copy": copied - checkpointed,
        "build": built - copied,
        "create": done - built,
    }
    return Measurement(
        MANUAL,
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


def _clean(cluster: Cluster, name: str, image: str, archive: PurePosixPath | None, copy: PurePosixPath) -> None:
    """The archives on both nodes, the image and any working container left by a failed build (the pods are gone:
    serving() waited for them, so the image is no longer in use)."""
    if archive:
        cluster.host_path(cluster.source, archive).unlink(missing_ok=True)
    cluster.host_path(cluster.target, copy).unlink(missing_ok=True)
    run_on(cluster.target, f"buildah rm {name} >/dev/null 2>&1; true")
    cluster.remove_images(cluster.target, lambda repository: repository == f"{IMAGES}/{name}")
    with contextlib.suppress(OSError):
        cluster.host_path(cluster.target, TARGET_DIR).rmdir()
