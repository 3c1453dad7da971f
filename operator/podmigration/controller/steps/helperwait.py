"""Waiting out a node-helper restart: the step that met it is repeated once the helper is back, instead of the
migration rolling back (helperoutage.py decides which failures those are)."""

from __future__ import annotations

import logging

from ...api import phases
from ...api.types import Obj, phase_of, status_of
from ...domain import helperoutage
from ...domain.helpers import HelperError
from ..context import HelperBaseline, Run
from ..runtime import Interrupt
from . import rollback

log = logging.getLogger(__name__)

#: Seconds between two looks at the helper pods while one is awaited.
HELPER_POLL_SECONDS = 1.0
#: How long a helper's error answer that a peer's death can cause (502: the peer or the kubelet failed) waits for
#: the pods' status to show a restart (the kubelet reports a dead container within a few seconds) before it counts
#: as the step's own failure.
HELPER_SETTLE_SECONDS = 5.0


def enter_phase(run: Run, phase: str | None) -> None:
    """A new phase starts with no baseline and no repeats; the same phase run again keeps them."""
    if phase != run.baseline.phase:
        run.baseline = HelperBaseline(phase)


def _awaited_nodes(run: Run, migration: Obj, exc: Exception) -> list[str]:
    """The nodes whose helpers the failed step needs: those a preflight named, else the migration's two."""
    if isinstance(exc, helperoutage.HelperUnavailable):
        return exc.nodes
    status = status_of(migration)
    nodes = (status.get("sourceNode"), status.get("targetNode") or migration["spec"].get("targetNode"))
    return list(dict.fromkeys(n for n in nodes if n))


def helper_outage(run: Run, migration: Obj, exc: Exception) -> str | None:
    """Why a failed step of this (roll-back-able, started) migration is to be repeated after a helper restart."""
    phase = phase_of(migration)
    if phase in (None, phases.PENDING) or not phases.can_roll_back(phase):
        return None
    if run.baseline.repeats >= helperoutage.MAX_REPEATS and not isinstance(exc, helperoutage.HelperUnavailable):
        return None
    nodes = _awaited_nodes(run, migration, exc)
    why = helperoutage.outage(exc, nodes, dict(run.baseline.incarnations), run.helpers())
    if why is None and isinstance(exc, HelperError) and exc.status == 502:
        run.sleep(HELPER_SETTLE_SECONDS)
        why = helperoutage.outage(exc, nodes, dict(run.baseline.incarnations), run.helpers())
    return why


def await_helpers(run: Run, migration: Obj, exc: Exception, why: str) -> None:
    """Wait until every node-helper of the migration is ready again; the run loop then repeats the step. The
    timeout, a cancel or a deletion meanwhile roll back as anywhere else. In Preparing the wait ends after
    operator.helperRestartWaitSeconds, and the repeated preflight refuses if the helper is still missing."""
    phase = migration["status"]["phase"]
    nodes = _awaited_nodes(run, migration, exc)
    run.baseline.repeats += 1
    log.warning("%s/%s: %s: %s; waiting for it, then repeating the step", run.namespace, run.name, phase, why)
    migration = run.progress(
        migration,
        f"{phase}: waiting for the node-helper, then repeating the step: {why}",
        reason="WaitingForHelper",
    )
    try:
        # At least one pause: a helper that just died may still be listed ready for a moment.
        migration = run.pause(HELPER_POLL_SECONDS)
        while helperoutage.missing(nodes, run.helpers()):
            if phase == phases.PREPARING and run.phase_seconds(migration) >= run.deps.config.helper_restart_seconds:
                return
            migration = run.pause(HELPER_POLL_SECONDS)
    except Interrupt as interrupt:
        rollback.begin_rollback(run, migration, interrupt)
        return
    run.baseline.incarnations = {}  # the repeated step starts with the helpers as they are now
