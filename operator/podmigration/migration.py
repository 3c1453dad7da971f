"""Drives one PodMigration through its phases; every step restarts safely from the recorded status.

Each loop iteration re-reads the PodMigration, so the status in the cluster is the only state:
an operator restart, a cancel annotation, a deletion or the timeout is seen at the next step
boundary (and while waiting for the replacement pod). A step either finishes and moves the
phase forward, or raises; before Finalizing any failure rolls back (replacement deleted, source
thawed and put back into traffic, archives and checkpoint images deleted) and ends Failed or
Cancelled. From Finalizing on the replacement is serving, so steps are retried until done.
The steps live in steps/, one module per phase; this module is the loop and what they share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from kopf import DaemonStoppingReason

from . import api, faults, owners, phases
from . import status as st
from .helperclient import Helper, HelperError, helpers_from_pods
from .kube import api_message, status_code
from .runtime import Deps, Interrupt, Obj, OperatorStopping, StaleStatus, StopFlag
from .steps.checkpoint import CheckpointSteps
from .steps.finalize import FinalizeSteps
from .steps.prepare import PrepareSteps
from .steps.restore import RestoreSteps
from .steps.rollback import RollbackSteps
from .steps.transfer import TransferSteps

__all__ = ["Deps", "Interrupt", "MigrationRunner", "OperatorStopping", "StopFlag"]

log = logging.getLogger(__name__)

#: Status writes tried on a fresh resourceVersion when only the PodMigration's metadata changed under them.
WRITE_ATTEMPTS = 5


def _only_deleted(reason: DaemonStoppingReason | None) -> bool:
    """Whether kopf stops the daemon because the PodMigration is being deleted, and not for the operator's exit."""
    return (reason is not None and bool(reason & DaemonStoppingReason.RESOURCE_DELETED)
            and not reason & (DaemonStoppingReason.OPERATOR_EXITING | DaemonStoppingReason.OPERATOR_PAUSING))


def _failure_reason(phase: str) -> str:
    return f"{phase}Failed"


class MigrationRunner(PrepareSteps, CheckpointSteps, TransferSteps, RestoreSteps, FinalizeSteps, RollbackSteps):
    """One PodMigration's state machine; ``run`` returns when it is terminal or the operator stops."""

    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.d = deps
        self.namespace = namespace
        self.name = name
        self._cancel_ignored_noted = False

    def _read(self) -> Obj:
        migration = self.d.kube.get_migration(self.namespace, self.name)
        if migration is None:
            raise OperatorStopping(f"PodMigration {self.namespace}/{self.name} is gone")
        return migration

    def _write(self, migration: Obj, patch: Obj) -> Obj:
        """Patch status, guarded by the resourceVersion of the read it was decided on; return the migration as it
        is now (later steps build on it).

        A conflict (409) where only metadata changed (kopf's finalizer and annotations, a cancel annotation) is
        written again on the new version: the status this patch builds on still holds, and the interrupt checks
        see the new metadata at the next boundary. A conflict where the status changed means another process (a
        second operator still running) moved the migration on: StaleStatus, and the loop decides again.
        """
        for _ in range(WRITE_ATTEMPTS):
            try:
                updated = self.d.kube.patch_migration_status(self.namespace, self.name, patch,
                                                             migration["metadata"].get("resourceVersion"))
            except Exception as exc:
                if status_code(exc) != 409:
                    raise
                current = self._read()
                if (current.get("status") or {}) != (migration.get("status") or {}):
                    raise StaleStatus(f"status changed by another writer (now phase "
                                      f"{(current.get('status') or {}).get('phase')})") from exc
                migration["metadata"] = current["metadata"]
                continue
            migration["metadata"] = updated.get("metadata") or migration["metadata"]
            migration["status"] = updated.get("status") or st.merged(migration.get("status") or {}, patch)
            return migration
        raise StaleStatus(f"the PodMigration kept changing: {WRITE_ATTEMPTS} status writes in a row conflicted")

    def _generation(self, migration: Obj) -> int | None:
        return migration["metadata"].get("generation")

    def _progress(self, migration: Obj, message: str, reason: str | None = None) -> Obj:
        status = migration.get("status") or {}
        return self._write(migration, st.progress(status, message, self.d.clock(), self._generation(migration),
                                                  reason=reason))

    def _transition(self, migration: Obj, phase: str, extra: Obj | None = None, *, reason: str | None = None,
                    message: str | None = None, event_type: str = "Normal") -> Obj:
        status = migration.get("status") or {}
        patch = st.transition(status, phase, self.d.clock(), self._generation(migration), reason=reason,
                              message=message)
        patch.update(extra or {})
        migration = self._write(migration, patch)
        self._announce(migration, event_type, patch["reason"], patch["message"])
        return migration

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Post an Event, best-effort: a lost Event must never fail (and so roll back or repeat) a step."""
        try:
            self.d.events(obj, type=type_, reason=reason, message=message)
        except Exception as exc:
            log.warning("%s/%s: could not post Event %s: %s", self.namespace, self.name, reason, exc)

    def _announce(self, migration: Obj, type_: str, reason: str, message: str) -> None:
        """Event on the PodMigration and on the source pod (the pod's own history shows the move).

        Best-effort: it runs after a phase change was written, and a failure here would otherwise be
        taken for a failure of the step that already finished.
        """
        self._event(migration, type_, reason, message)
        try:
            pod = self.d.kube.get_pod(self.namespace, migration["spec"]["podName"])
        except Exception as exc:
            log.warning("%s/%s: could not read the source pod to post Event %s: %s", self.namespace, self.name,
                        reason, exc)
            return
        if pod is not None:
            self._event(pod, type_, f"Migration{reason}", f"PodMigration {self.name}: {message}")

    def _deadline(self, migration: Obj) -> datetime:
        """timeoutSeconds counts from the start (Preparing): time queued behind the limits is not the move's."""
        times = st.phase_times(migration.get("status") or {})
        if phases.PREPARING not in times and (migration.get("status") or {}).get("phase") in (None, phases.PENDING):
            return datetime.max.replace(tzinfo=self.d.clock().tzinfo)
        start = times.get(phases.PREPARING) or st.parse_time(migration["metadata"]["creationTimestamp"])
        return start + timedelta(seconds=migration["spec"].get("timeoutSeconds", 300))

    def _remaining(self, migration: Obj) -> float:
        return max(1.0, (self._deadline(migration) - self.d.clock()).total_seconds())

    def _check_interrupts(self, migration: Obj) -> None:
        """Raise Interrupt for a deletion, cancel or timeout while rolling back is still possible."""
        phase = (migration.get("status") or {}).get("phase")
        cancel = (migration["metadata"].get("annotations") or {}).get(api.CANCEL_ANNOTATION) == "true"
        if not phases.can_roll_back(phase):
            if cancel and not self._cancel_ignored_noted:
                self._cancel_ignored_noted = True
                self._event(migration, "Warning", "CancelIgnored",
                            f"cancel requested in phase {phase}: the replacement is already serving")
            return
        if migration["metadata"].get("deletionTimestamp"):
            raise Interrupt(phases.CANCELLED, "Deleted", "the PodMigration was deleted; migration rolled back")
        if cancel:
            raise Interrupt(phases.CANCELLED, "Cancelled", f"cancelled by user in phase {phase or phases.PENDING}")
        if self.d.clock() >= self._deadline(migration):
            timeout = migration["spec"].get("timeoutSeconds", 300)
            raise Interrupt(phases.FAILED, "Timeout",
                            f"migration did not finish within {timeout}s (phase {phase or phases.PENDING})")

    def _sleep(self, seconds: float, stop: StopFlag) -> None:
        """Wait; give up only when the operator exits.

        kopf also raises the stop flag when the PodMigration is deleted, but then it waits for the
        daemon: the rollback must still run, so a deletion keeps sleeping without the flag.
        """
        if not stop:
            stop.wait(seconds)
        if stop:
            if not _only_deleted(stop.reason):
                raise OperatorStopping(f"operator is stopping ({stop.reason})")
            time.sleep(seconds)

    def _pause(self, seconds: float, stop: StopFlag) -> Obj:
        """Sleep, then re-read the PodMigration and check interrupts again."""
        self._sleep(seconds, stop)
        migration = self._read()
        self._check_interrupts(migration)
        return migration

    def run(self, stop: StopFlag) -> None:
        """Drive the migration until it is terminal or the operator exits; never raises."""
        steps: dict[str | None, Callable[[Obj, StopFlag], Obj]] = {
            None: self._accept,
            phases.PENDING: self._start,
            phases.PREPARING: self._prepare,
            phases.CHECKPOINTING: self._checkpoint,
            phases.TRANSFERRING: self._transfer,
            phases.RESTORING: self._restore,
            phases.FINALIZING: self._finalize,
        }
        started = False
        while True:
            try:
                migration = self._read()
                if not started:
                    started = True
                    migration = faults.resumed(self, migration, stop)
                status = migration.get("status") or {}
                phase = status.get("phase")
                if phases.is_terminal(phase):
                    return
                if status.get("rollback"):
                    self._roll_back(migration, stop)
                    continue
                if stop and not migration["metadata"].get("deletionTimestamp"):
                    return
                try:
                    self._check_interrupts(migration)
                    migration = steps[phase](migration, stop)
                    point = faults.boundary_point(phase, migration)
                    if point:
                        faults.reached(self, migration, point, stop)
                except Interrupt as interrupt:
                    self._begin_rollback(migration, interrupt)
                except (OperatorStopping, StaleStatus):
                    raise
                except Exception as exc:  # every other failure of a step is reported, never swallowed
                    self._step_failed(migration, phase, exc, stop)
            except OperatorStopping as why:
                log.info("%s/%s: %s; leaving the status for the next run", self.namespace, self.name, why)
                return
            except StaleStatus as why:
                log.warning("%s/%s: %s; deciding again from the status as it is now", self.namespace, self.name, why)
            except Exception:
                # Reading, starting a rollback, reporting a failure or ending a rollback failed. Never let it
                # escape: kopf restarts a failed daemon only while it is not stopping, so after a deletion the
                # rollback would never run. The status is the state: the next iteration resumes from it.
                log.exception("%s/%s: unexpected error; retrying in %gs", self.namespace, self.name,
                              self.d.config.retry_seconds)
                try:
                    self._sleep(self.d.config.retry_seconds, stop)
                except OperatorStopping as why:
                    log.info("%s/%s: %s; leaving the status for the next run", self.namespace, self.name, why)
                    return

    def _step_failed(self, migration: Obj, phase: str | None, exc: Exception, stop: StopFlag) -> None:
        message = api_message(exc) if status_code(exc) else str(exc)
        log.warning("%s/%s: %s failed: %s", self.namespace, self.name, phase, message)
        # Decide on the phase as it is now, not as it was before the step: a step can fail after it
        # wrote its phase change (Restoring -> Finalizing), and a Finalizing migration must not roll back.
        migration = self._read()
        status = migration.get("status") or {}
        phase = status.get("phase")
        if phases.is_terminal(phase) or status.get("rollback"):
            return  # the loop sees it at once
        if phases.can_roll_back(phase):
            self._begin_rollback(migration, Interrupt(phases.FAILED, _failure_reason(phase or phases.PENDING),
                                                      message))
        else:
            self._progress(migration, f"{phase}: retrying in {self.d.config.retry_seconds:g}s: {message}",
                           reason="Retrying")
            self._sleep(self.d.config.retry_seconds, stop)

    def _helpers(self) -> dict[str, Helper]:
        pods = self.d.kube.list_pods(self.d.config.helper_namespace, api.HELPER_LABEL_SELECTOR)
        return helpers_from_pods(pods, self.d.config.helper_port)

    def _helper(self, node: str) -> Helper:
        helper = self._helpers().get(node)
        if helper is None or not helper.ready:
            raise HelperError(node, "discovery", f"no ready podmigration node-helper pod on node {node}")
        return helper

    def _source_pod(self, migration: Obj) -> Obj | None:
        """The source pod, if it is still the very pod this migration started with."""
        pod = self.d.kube.get_pod(self.namespace, migration["spec"]["podName"])
        expected = (migration.get("status") or {}).get("sourcePodUID")
        if pod is None or (expected and pod["metadata"]["uid"] != expected):
            return None
        return pod

    def _owner(self, pod: Obj) -> Obj | None:
        return owners.read_owner(pod, self.d.kube.get_owner)

    def _require_source(self, migration: Obj) -> Obj:
        pod = self._source_pod(migration)
        if pod is None:
            raise RuntimeError(f"source pod {self.namespace}/{migration['spec']['podName']} disappeared")
        return pod
