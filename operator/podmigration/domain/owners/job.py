"""Pods of a Job (and so of a CronJob): the moved pod carries on the same work, and the Job counts it once.

The Job controller counts a deleted pod that still has its tracking finalizer as failed (a Job with
``backoffLimit: 0`` would fail), so the killed source loses the finalizer before it is deleted and the
replacement gets it at its adoption. Both changes and the source's deletion are made back to back: the Job
controller batches pod events for a second (SyncJobBatchPeriod) and so syncs once, on the end state, where the
replacement is the one active pod and the source's end is not counted.
"""

from __future__ import annotations

from ...api.types import Obj
from .base import OwnerAccess
from .selector import SelectorOwner

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"


class JobOwner(SelectorOwner):
    kind = "Job"
    change_hint = "suspended, or its parallelism changed"

    def hand_over(self, kube: OwnerAccess, namespace: str, source: Obj, replacement: Obj) -> None:
        finalizers = [f for f in source["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
        kube.patch_pod(namespace, source["metadata"]["name"], {"metadata": {"finalizers": finalizers or None}})
        super().hand_over(kube, namespace, source, replacement)

    def adoption(self, source: Obj) -> Obj:
        return (
            {"finalizers": [TRACKING_FINALIZER]}
            if TRACKING_FINALIZER in (source["metadata"].get("finalizers") or [])
            else {}
        )
