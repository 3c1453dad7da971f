"""Finalizing: end the source without letting it run again, hand the replacement to its owner, clean up."""

from __future__ import annotations

import logging
from datetime import timedelta

from ...api import phases
from ...api.types import Obj
from ...domain import owners
from ...domain import status as st
from ...domain.helpers import HelperError
from ..context import Run
from . import cleanup, restore, sourcepod

log = logging.getLogger(__name__)


def finalize(run: Run, migration: Obj) -> Obj:
    status = migration["status"]
    skipped: list[str] = []
    source_pod = run.source_pod(migration)
    if source_pod is not None:
        replacement = run.deps.kube.get_pod(run.namespace, status["targetPod"])
        try:
            if migration["spec"].get("keepSource"):
                sourcepod.release_source(run, source_pod, status["sourceNode"])
            else:
                sourcepod.kill_source(run, source_pod, status["sourceNode"], replacement)
        except HelperError as exc:
            skipped.append(_without_source_helper(run, migration, source_pod, replacement, exc))
    migration = restore.end_handover(run, migration)
    skipped += cleanup.cleanup(run, migration, give_up=_helper_wait_over(run, migration), patient=True)
    kept = " (source kept running)" if migration["spec"].get("keepSource") else ""
    message = f"pod {status['targetPod']} runs on {status['targetNode']}{kept}"
    if not skipped:
        return run.transition(migration, phases.SUCCEEDED, message=message)
    return run.transition(
        migration,
        phases.SUCCEEDED,
        {"warnings": list(status.get("warnings") or []) + skipped},
        reason="CleanupSkipped",
        message=f"{message}; " + "; ".join(skipped),
        event_type="Warning",
    )


def _helper_wait_over(run: Run, migration: Obj) -> bool:
    """Whether Finalizing has waited long enough for an unreachable node-helper: the replacement serves, and a
    node that is down (or a helper that is not scheduled) must not keep the migration from ever ending."""
    since = st.phase_times(migration["status"]).get(phases.FINALIZING)
    wait = timedelta(seconds=run.deps.config.finalize_helper_wait_seconds)
    return since is not None and run.deps.clock() - since >= wait


def _without_source_helper(run: Run, migration: Obj, pod: Obj, replacement: Obj | None, exc: HelperError) -> str:
    """End the source through the API alone once its node-helper stayed unreachable past the wait (else
    re-raise, so the step is retried). It stays frozen and cut off from the network; its kubelet, if the
    node comes back, stops it, and a SIGKILL reaches frozen processes before any handler of a SIGTERM."""
    if not _helper_wait_over(run, migration):
        raise exc
    node = migration["status"]["sourceNode"]
    if migration["spec"].get("keepSource"):
        note = (
            f"node-helper on {node} unreachable ({exc}): the kept source pod {pod['metadata']['name']} could "
            "not be thawed and reconnected; it stays frozen and cut off from the network"
        )
        run.event(migration, "Warning", "SourceNotReleased", note)
        return note
    if replacement is not None:
        owners.strategy_for(pod).hand_over(run.deps.kube, run.namespace, pod, replacement)
    run.deps.kube.delete_pod(run.namespace, pod["metadata"]["name"], pod["metadata"]["uid"])
    note = (
        f"node-helper on {node} unreachable ({exc}): the source pod {pod['metadata']['name']} was deleted "
        "without being killed while frozen; it stays frozen and cut off from the network until its kubelet "
        "stops it"
    )
    log.warning("%s/%s: %s", run.namespace, run.name, note)
    run.event(migration, "Warning", "SourceNotKilled", note)
    return note
