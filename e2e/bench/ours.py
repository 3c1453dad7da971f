"""Our tool: a PodMigration of the counter from the source node to the target, as a user creates it."""

from __future__ import annotations

import contextlib
import time

import e2elib as lib
from kubernetes.client.rest import ApiException

from . import trace
from .cluster import Cluster, run_on
from .results import OURS, Measurement
from .workload import Serving, Workload, remove, serving

TIMEOUT_SECONDS = 1800  # the PodMigration's own timeout: 4 GiB moves must not be cut by the 300 s default
ARCHIVES = lib.ARCHIVES
CHECKPOINT_IMAGES = "localhost/podmigration-checkpoint"


def measure(cluster: Cluster, workload: Workload, run: int) -> Measurement:
    with serving(cluster, f"pmb-ours-{workload.tag}-{run}", workload) as one:
        return migrate_at_once(cluster, workload, run, [one])[0]


def migrate_at_once(
    cluster: Cluster, workload: Workload, run: int, servings: list[Serving], method: str = OURS
) -> list[Measurement]:
    """Creates one PodMigration per serving counter, all at once, and measures each once all have finished. Total
    runs from the creation of the PodMigrations to its Succeeded transition (the operator's own timestamp). The
    moved pods are deleted here, so that what the migrations left on the nodes can be swept afterwards."""
    start = time.time()
    names = [
        lib.start_migration(cluster.custom, s.name, cluster.target, timeoutSeconds=TIMEOUT_SECONDS) for s in servings
    ]
    uids = [
        cluster.custom.get_namespaced_custom_object(lib.GROUP, lib.VERSION, lib.NAMESPACE, lib.PLURAL, name)[
            "metadata"
        ]["uid"]
        for name in names
    ]
    try:
        statuses = [
            lib.finished_migration(cluster.custom, name, timeout=TIMEOUT_SECONDS + 60)["status"] for name in names
        ]
        results = [
            _measured(serving_, name, status, start, workload, run, method)
            for serving_, name, status in zip(servings, names, statuses)
        ]
        for measured, name, uid, status in zip(results, names, uids, statuses):
            measured.trace = trace.collect(cluster, name, uid, status, start)
    finally:
        for name in names:
            with contextlib.suppress(ApiException):
                cluster.custom.delete_namespaced_custom_object(lib.GROUP, lib.VERSION, lib.NAMESPACE, lib.PLURAL, name)
        for serving_ in servings:
            remove(cluster, serving_.name)
        left = [sweep(cluster, uid, serving_.name) for uid, serving_ in zip(uids, servings)]
    for measured, count in zip(results, left):
        measured.leftovers = count
    return results


def _measured(
    serving_: Serving, name: str, status: dict, start: float, workload: Workload, run: int, method: str
) -> Measurement:
    if status["phase"] != "Succeeded":
        raise RuntimeError(f"PodMigration {name}: {status['phase']} {status.get('reason')}: {status.get('message')}")
    done = next(trace.stamp(t["time"]) for t in status["phaseTransitions"] if t["phase"] == "Succeeded")
    serving_.answered_after(done)
    seen = serving_.outage(start)
    frozen = [c["criu"]["frozenTime"] / 1e6 for c in status.get("containers", []) if c.get("criu")]
    return Measurement(
        method,
        workload.size_mb,
        workload.pattern,
        run,
        seen.seconds,
        done - start,
        dict(status["durations"]),
        max(frozen, default=None),
        seen.wrong,
        seen.state_kept,
    )


def sweep(cluster: Cluster, uid: str, pod: str) -> int:
    """Removes what one migration left on either node once its pods are gone, and counts it: the operator deletes
    archives and checkpoint images in Finalizing, but the image the restored container runs from cannot go then,
    and stays behind untagged."""
    left = 0
    archives = f"{ARCHIVES}/{uid}-* /var/lib/kubelet/checkpoints/checkpoint-{pod}_{lib.NAMESPACE}-*"
    for node in (cluster.source, cluster.target):
        left += cluster.remove_images(node, lambda repository: repository.startswith(f"{CHECKPOINT_IMAGES}/{uid}-"))
        found = run_on(node, f"ls -d {archives} 2>/dev/null; rm -f {archives}").split()
        left += len(found)
    return left
