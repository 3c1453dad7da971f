"""Test-only fault injection at named points of a migration, so the fault suite hits exact phase boundaries.

Off unless the operator runs with PM_FAULT_INJECTION=true (chart value ``operator.faultInjection``, false by default);
then the points look at two annotations of the PodMigration:
- ``podmigration.dev/test-crash-at: <point>``: the operator process exits at once (``os._exit``, no cleanup, as a
  killed process) when the migration reaches that point. It fires once: ``test-crashed-at`` records it first, so the
  replica that resumes the migration goes past the point.
- ``podmigration.dev/test-pause-at: <point>``: the migration waits there (``test-paused-at`` says it arrived) until
  the annotation is removed or the PodMigration is deleted or cancelled, so a test can act in a known phase (e.g.
  delete it).
- ``podmigration.dev/test-fail-at: <point>``: the step fails there (after any pause at that point), as a failing
  helper call would, so a test sees the rollback from inside a phase (e.g. with the source fenced, cut and dumped).
Unknown point names in the annotations match nothing.

This module is the operator's ``Deps.faults`` (handlers.py): the runner and the steps call it only through that (the
steps take the point names from here), so it can build on the run context without an import cycle.
"""

from __future__ import annotations

import logging
import os
import sys

from .. import api
from ..api import phases
from ..api.types import Obj, phase_of
from .context import Run

log = logging.getLogger(__name__)

CRASH_AT = f"{api.GROUP}/test-crash-at"
CRASHED_AT = f"{api.GROUP}/test-crashed-at"
PAUSE_AT = f"{api.GROUP}/test-pause-at"
PAUSED_AT = f"{api.GROUP}/test-paused-at"
FAIL_AT = f"{api.GROUP}/test-fail-at"

#: Inside a step: the kubelet checkpoint of the first container is done, its result not yet in the status.
CHECKPOINTED = "checkpointed"
#: Inside a step: every container is dumped and the source frozen, no volume copied yet.
FROZEN = "frozen"
#: Inside Restoring: the replacement pod exists, nothing about it is recorded yet.
REPLACEMENT_CREATED = "replacement-created"
#: Inside Restoring, StatefulSet pods only: the source is killed and deleted, the controller's new pod not yet seen
#: (the hand-over window).
HANDED_OVER = "handed-over"
#: Every point: the phase boundaries (right after the new phase was written, named by it) and the four above.
POINTS: frozenset[str] = frozenset(
    {p.lower() for p in phases.FORWARD[:-1]} | {CHECKPOINTED, FROZEN, REPLACEMENT_CREATED, HANDED_OVER}
)

#: Exit status of an injected crash (as a SIGKILL'd process would report).
CRASH_EXIT_CODE = 137


def entered(run: Run, migration: Obj) -> Obj:
    """The runner sees the migration in a phase for the first time: that phase's boundary point fires here, before
    any of the phase's work. Keyed on what the runner reads, not on which step wrote the phase, so the point also
    fires when the write was another's: the previous operator process (killed by another migration's point between
    the write and this point), an overlapping replica during a peering hand-over, or a step of this runner that
    wrote the phase and then failed or found its status stale."""
    phase = (phase_of(migration) or "").lower()
    return reached(run, migration, phase) if phase in POINTS else migration


def reached(run: Run, migration: Obj, point: str) -> Obj:
    """Crash or pause here when the PodMigration asks for it; returns the migration (re-read after a pause)."""
    if not run.deps.config.fault_injection:
        return migration
    assert point in POINTS, point
    annotations = migration["metadata"].get("annotations") or {}
    if annotations.get(CRASH_AT) == point and annotations.get(CRASHED_AT) != point:
        _mark(run, CRASHED_AT, point)
        log.warning("%s/%s: fault injection: operator exits at %s", run.namespace, run.name, point)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
    if annotations.get(PAUSE_AT) == point:
        _mark(run, PAUSED_AT, point)
        log.warning("%s/%s: fault injection: paused at %s", run.namespace, run.name, point)
        while (
            annotations.get(PAUSE_AT) == point
            and not migration["metadata"].get("deletionTimestamp")
            and annotations.get(api.CANCEL_ANNOTATION) != "true"
        ):
            run.sleep(run.deps.config.poll_seconds)
            migration = run.read()
            annotations = migration["metadata"].get("annotations") or {}
    if annotations.get(FAIL_AT) == point:
        raise RuntimeError(f"fault injection: failed at {point}")
    return migration


def _mark(run: Run, key: str, point: str) -> None:
    run.deps.kube.patch_migration(run.namespace, run.name, {"metadata": {"annotations": {key: point}}})
