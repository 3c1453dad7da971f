"""Drives one PodMigration through its phases; every step restarts safely from the recorded status.

Each loop iteration re-reads the PodMigration, so the status in the cluster is the only state:
an operator restart, a cancel annotation, a deletion or the timeout is seen at the next step
boundary (and while waiting for the replacement pod). A step either finishes and moves the
phase forward, or raises; before Finalizing any failure rolls back (replacement deleted, source
thawed and put back into traffic, archives and checkpoint images deleted) and ends Failed or
Cancelled. From Finalizing on the replacement is serving, so steps are retried until done.
The steps live in steps/, one function per phase over a run context (context.Run); this module is the loop and
the one dispatch over the phase.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..api import phases
from ..api.types import Obj, status_of
from ..clients.kube import api_message, status_code
from .context import Deps, Run
from .runtime import Interrupt, OperatorStopping, StaleStatus, StopFlag, WaitForSlot
from .steps import checkpoint, finalize, helperwait, prepare, restore, rollback, transfer

__all__ = ["STEPS", "Deps", "Interrupt", "OperatorStopping", "StopFlag", "advance"]

log = logging.getLogger(__name__)

Step = Callable[[Run, Obj], Obj]

#: The forward step of each phase (None: not yet accepted); each returns the migration as it last wrote it.
STEPS: dict[str | None, Step] = {
    None: prepare.accept,
    phases.PENDING: prepare.start,
    phases.PREPARING: prepare.prepare,
    phases.CHECKPOINTING: checkpoint.checkpoint,
    phases.TRANSFERRING: transfer.transfer,
    phases.RESTORING: restore.restore,
    phases.FINALIZING: finalize.finalize,
}


def _failure_reason(phase: str) -> str:
    return f"{phase}Failed"


def advance(run: Run) -> float | None:
    """Drive the migration until it is terminal or the operator exits (None), or until it waits in Pending for a
    slot: then the seconds after which to call again. Never raises."""
    deps, namespace, name = run.deps, run.namespace, run.name
    while True:
        try:
            migration = run.read()
            status = status_of(migration)
            phase = status.get("phase")
            if phases.is_terminal(phase):
                return None
            if status.get("rollback"):
                rollback.roll_back(run, migration)
                continue
            if run.stop and not migration["metadata"].get("deletionTimestamp"):
                deps.metrics.in_flight.forget(namespace, name)  # another replica drives it now
                return None
            try:
                if phase != run.seen:
                    run.seen = phase
                    migration = deps.faults.entered(run, migration)
                run.check_interrupts(migration)
                helperwait.enter_phase(run, phase)
                migration = STEPS[phase](run, migration)
            except Interrupt as interrupt:
                rollback.begin_rollback(run, migration, interrupt)
            except (OperatorStopping, StaleStatus, WaitForSlot):
                raise
            except Exception as exc:  # every other failure of a step is reported, never swallowed
                step_failed(run, phase, exc)
        except WaitForSlot as queued:
            return queued.seconds
        except OperatorStopping as why:
            log.info("%s/%s: %s; leaving the status for the next run", namespace, name, why)
            deps.metrics.in_flight.forget(namespace, name)
            return None
        except StaleStatus as why:
            log.warning("%s/%s: %s; deciding again from the status as it is now", namespace, name, why)
        except Exception:
            # Reading, starting a rollback, reporting a failure or ending a rollback failed. Never let it
            # escape: kopf restarts a failed daemon only while it is not stopping, so after a deletion the
            # rollback would never run. The status is the state: the next iteration resumes from it.
            log.exception("%s/%s: unexpected error; retrying in %gs", namespace, name, deps.config.retry_seconds)
            try:
                run.sleep(deps.config.retry_seconds)
            except OperatorStopping as why:
                log.info("%s/%s: %s; leaving the status for the next run", namespace, name, why)
                return None


def step_failed(run: Run, phase: str | None, exc: Exception) -> None:
    """A step raised: wait for a restarting node-helper, roll back, or (from Finalizing on) retry."""
    message = api_message(exc) if status_code(exc) else str(exc)
    log.warning("%s/%s: %s failed: %s", run.namespace, run.name, phase, message)
    # Decide on the phase as it is now, not as it was before the step: a step can fail after it
    # wrote its phase change (Restoring -> Finalizing), and a Finalizing migration must not roll back.
    migration = run.read()
    status = status_of(migration)
    phase = status.get("phase")
    if phases.is_terminal(phase) or status.get("rollback"):
        return  # the loop sees it at once
    if phases.can_roll_back(phase):
        why = helperwait.helper_outage(run, migration, exc)
        if why:
            helperwait.await_helpers(run, migration, exc, why)
            return
        rollback.begin_rollback(
            run, migration, Interrupt(phases.FAILED, _failure_reason(phase or phases.PENDING), message)
        )
    else:
        run.progress(
            migration, f"{phase}: retrying in {run.deps.config.retry_seconds:g}s: {message}", reason="Retrying"
        )
        run.sleep(run.deps.config.retry_seconds)
