"""Baseline (b), the cold restart: delete the pod and create it fresh on the target, as a controller would; the
process starts over (new token, count from 0, its memory written again), so its state is lost. Its downtime is
until the new process answers, which for the counter means its ballast is written (it listens only then)."""

from __future__ import annotations

import time

import e2elib as lib

from .cluster import Cluster
from .results import COLD, Measurement
from .workload import Workload, serving


def measure(cluster: Cluster, workload: Workload, run: int) -> Measurement:
    name = f"pmb-cold-{workload.tag}-{run}"
    with serving(cluster, name, workload) as counter:
        start = time.time()
        cluster.core.delete_namespaced_pod(name, lib.NAMESPACE)
        cluster.core.create_namespaced_pod(lib.NAMESPACE, workload.pod(f"{name}-c", cluster.target, app=name))
        created = time.time()
        done = counter.answered_after(start, same_process=False).at
        seen = counter.outage(start, keep_state=False)
    return Measurement(
        COLD,
        workload.size_mb,
        workload.pattern,
        run,
        seen.seconds,
        done - start,
        {"delete+create": created - start, "first answer": done - created},
        None,
        seen.wrong,
        seen.state_kept,
    )
