"""Test-only fault injection at named points of a migration, so the fault suite hits exact phase boundaries.

Off unless the operator runs with PM_FAULT_INJECTION=true (chart value ``operator.faultInjection``, false by default);
then the points look at two annotations of the PodMigration:
- ``podmigration.dev/test-crash-at: <point>``: the operator process exits at once (``os._exit``, no cleanup, as a
  killed process) when the migration reaches that point. It fires once: ``test-crashed-at`` records it first, so the
  replica that resumes the migration goes past the point.
- ``podmigration.dev/test-pause-at: <point>``: the migration waits there (``test-paused-at`` says it arrived) until
  the annotation is removed or the PodMigration is deleted, so a test can act in a known phase (e.g. delete it).
Unknown point names in the annotations match nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from . import api, phases
from .runtime import Obj, StopFlag

if TYPE_CHECKING:
    from .migration import MigrationRunner

log = logging.getLogger(__name__)

CRASH_AT = f"{api.GROUP}/test-crash-at"
CRASHED_AT = f"{api.GROUP}/test-crashed-at"
PAUSE_AT = f"{api.GROUP}/test-pause-at"
PAUSED_AT = f"{api.GROUP}/test-paused-at"

#: Inside a step: the kubelet checkpoint of the first container is done, its result not yet in the status.
CHECKPOINTED = "checkpointed"
#: Inside Restoring: the replacement pod exists, nothing about it is recorded yet.
REPLACEMENT_CREATED = "replacement-created"
#: Every point: the phase boundaries (right after the new phase was written, named by it) and the two above.
POINTS: frozenset[str] = frozenset({p.lower() for p in phases.FORWARD[:-1]} | {CHECKPOINTED, REPLACEMENT_CREATED})

#: Exit status of an injected crash (as a SIGKILL'd process would report).
CRASH_EXIT_CODE = 137


def boundary_point(before: str | None, migration: Obj) -> str | None:
    """The point a step just crossed: the new phase, when the step changed it."""
    phase = (migration.get("status") or {}).get("phase")
    return phase.lower() if phase and phase != before and phase.lower() in POINTS else None


def resumed(runner: MigrationRunner, migration: Obj, stop: StopFlag) -> Obj:
    """A runner starting in a phase stands right after that phase's boundary, as far as the work goes: its point
    fires there if it has not yet. (With several migrations in one process, another one's crash can end the process
    between this one's phase write and its own point.)"""
    phase = ((migration.get("status") or {}).get("phase") or "").lower()
    return reached(runner, migration, phase, stop) if phase in POINTS else migration


def reached(runner: MigrationRunner, migration: Obj, point: str, stop: StopFlag) -> Obj:
    """Crash or pause here when the PodMigration asks for it; returns the migration (re-read after a pause)."""
    if not runner.d.config.fault_injection:
        return migration
    assert point in POINTS, point
    annotations = migration["metadata"].get("annotations") or {}
    if annotations.get(CRASH_AT) == point and annotations.get(CRASHED_AT) != point:
        _mark(runner, CRASHED_AT, point)
        log.warning("%s/%s: fault injection: operator exits at %s", runner.namespace, runner.name, point)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
    if annotations.get(PAUSE_AT) != point:
        return migration
    _mark(runner, PAUSED_AT, point)
    log.warning("%s/%s: fault injection: paused at %s", runner.namespace, runner.name, point)
    while annotations.get(PAUSE_AT) == point and not migration["metadata"].get("deletionTimestamp"):
        runner._sleep(runner.d.config.poll_seconds, stop)
        migration = runner._read()
        annotations = migration["metadata"].get("annotations") or {}
    return migration


def _mark(runner: MigrationRunner, key: str, point: str) -> None:
    runner.d.kube.patch_migration(runner.namespace, runner.name, {"metadata": {"annotations": {key: point}}})
