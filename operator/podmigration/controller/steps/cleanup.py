"""Deleting a migration's archives and checkpoint images on its nodes, best-effort per node."""

from __future__ import annotations

import logging

from ...api import phases
from ...api.types import Obj, status_of
from ...domain.helpers import Helper, HelperError
from ..context import Run

log = logging.getLogger(__name__)


def cleanup(run: Run, migration: Obj, give_up: bool = False, patient: bool = False) -> list[str]:
    """Delete this migration's archives and checkpoint images on both nodes (idempotent); returns what was
    skipped, and why.

    Best-effort per node: a node without a ready helper (gone, drained, helper uninstalled) would
    otherwise keep the migration from ever ending; what is left there is reported in an Event. A helper that
    is listed ready but does not answer is retried, unless ``give_up``; ``patient`` (Finalizing, which has a
    bounded wait) retries a missing or not ready one too: a DaemonSet rollout replaces each helper in turn.
    """
    status = status_of(migration)
    nodes = list(dict.fromkeys(n for n in (status.get("sourceNode"), status.get("targetNode")) if n))
    helpers = run.helpers() if nodes else {}
    # In a rollback the replacement is gone: the names its restore gave its images on the target go too.
    rolled_back = status.get("phase") != phases.FINALIZING
    notes = [
        note
        for node in nodes
        if (
            note := cleanup_node(run, migration, node, helpers.get(node), give_up, aliases=rolled_back, patient=patient)
        )
    ]
    previous = status.get("sourceRestoredBy")
    if previous and not rolled_back and not migration["spec"].get("keepSource") and status.get("sourceNode"):
        # The source was itself a restore: the names its restarts would have used on its node go with it.
        note = cleanup_node(
            run,
            migration,
            status["sourceNode"],
            helpers.get(status["sourceNode"]),
            give_up,
            uid=previous,
            aliases=True,
            patient=patient,
        )
        notes += [note] if note else []
    return notes


def cleanup_node(
    run: Run,
    migration: Obj,
    node: str,
    helper: Helper | None,
    give_up: bool = False,
    uid: str | None = None,
    aliases: bool = False,
    patient: bool = False,
) -> str | None:
    """A helper listed not ready is still asked once (on a NotReady node its pod is marked not ready, yet it
    may answer); only when it does not is the cleanup skipped at once, unless ``patient`` (then it is retried
    until ``give_up``, as is a missing one). ``uid``/``aliases``: see HelperClient.cleanup (by default this
    migration's, without the names a settled restore uses)."""
    wait = patient and not give_up
    if helper is None:
        if wait:
            raise HelperError(node, "DELETE /v1/migrations", "no node-helper pod on the node yet", unreachable=True)
        return _cleanup_skipped(run, migration, node, "no podmigration node-helper pod on node")
    try:
        answer = run.deps.helpers.cleanup(helper, uid or migration["metadata"]["uid"], aliases)
    except HelperError as exc:
        if not helper.ready and not wait:
            return _cleanup_skipped(run, migration, node, f"node-helper not ready ({exc}) on node")
        if not give_up:
            raise
        return _cleanup_skipped(
            run, migration, node, f"cleanup given up, the node-helper does not answer ({exc}), on node"
        )
    kept = [k.get("image", "?") if isinstance(k, dict) else str(k) for k in answer.get("kept") or []]
    if kept:
        run.event(
            migration,
            "Warning",
            "CleanupIncomplete",
            f"node-helper on node {node} kept checkpoint image(s) still in use: {', '.join(kept)}",
        )
    return None


def _cleanup_skipped(run: Run, migration: Obj, node: str, why: str) -> str:
    log.warning("%s/%s: %s %s; cleanup skipped there", run.namespace, run.name, why, node)
    note = f"{why} {node}: this migration's checkpoint archives and images may remain on that node"
    run.event(migration, "Warning", "CleanupSkipped", note)
    return note
