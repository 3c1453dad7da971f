"""One run of one PodMigration's state machine: its dependencies, its identity, kopf's stop flag, and the actions
every step takes (read, guarded write, phase change, Events, waits, the helpers and the source pod).

The steps (steps/) are functions of a ``Run`` and the migration as last read; the runner (runner.py) makes one
``Run`` per daemon and dispatches on the phase. The fault points are a dependency (``Deps.faults``): faults.py
implements them for the fault suite, and the steps reach them through ``Run.reached``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from kopf import DaemonStoppingReason

from .. import api
from ..api import phases
from ..api.types import Obj, annotations_of, phase_of, status_of
from ..clients.config import Config
from ..clients.events import EventSink
from ..clients.helperclient import HelperClient
from ..clients.kube import status_code
from ..clients.kubeapi import KubeApi
from ..domain import owners
from ..domain import status as st
from ..domain.helpers import Helper, HelperError, helpers_from_pods
from . import logcontext
from .metrics import METRICS, Metrics
from .runtime import Interrupt, OperatorStopping, StaleStatus, StopFlag

log = logging.getLogger(__name__)

#: Status writes tried on a fresh resourceVersion when only the PodMigration's metadata changed under them.
WRITE_ATTEMPTS = 5


class FaultPoints(Protocol):
    """Named points of a migration where the fault suite crashes, pauses or fails the operator (faults.py)."""

    def entered(self, run: Run, migration: Obj) -> Obj:
        """The runner reads the migration in a phase for the first time."""
        ...

    def reached(self, run: Run, migration: Obj, point: str) -> Obj:
        """A step reached a named point inside its phase."""
        ...


class NoFaults:
    """No fault points: every point passes the migration on unchanged."""

    def entered(self, run: Run, migration: Obj) -> Obj:
        return migration

    def reached(self, run: Run, migration: Obj, point: str) -> Obj:
        return migration


@dataclass
class Deps:
    kube: KubeApi
    helpers: HelperClient
    config: Config
    events: EventSink
    clock: Callable[[], datetime] = st.utcnow
    metrics: Metrics = METRICS
    faults: FaultPoints = field(default_factory=NoFaults)


@dataclass
class HelperBaseline:
    """The phase a node-helper baseline is for, each node's helper incarnation when it began, and the repeats of
    that phase for helper restarts so far (steps/helperwait.py)."""

    phase: str | None = None
    incarnations: dict[str, str] = field(default_factory=dict)
    repeats: int = 0


def only_deleted(reason: DaemonStoppingReason | None) -> bool:
    """Whether kopf stops the daemon because the PodMigration is being deleted, and not for the operator's exit."""
    return (
        reason is not None
        and bool(reason & DaemonStoppingReason.RESOURCE_DELETED)
        and not reason & (DaemonStoppingReason.OPERATOR_EXITING | DaemonStoppingReason.OPERATOR_PAUSING)
    )


@dataclass
class Run:
    """One PodMigration driven by this process until it is terminal or the operator stops."""

    deps: Deps
    namespace: str
    name: str
    stop: StopFlag
    baseline: HelperBaseline = field(default_factory=HelperBaseline)
    cancel_ignored_noted: bool = False
    #: The phase this run last saw, for the fault points (faults.entered).
    seen: str | None = None

    def read(self) -> Obj:
        migration = self.deps.kube.get_migration(self.namespace, self.name)
        if migration is None:
            self.deps.metrics.in_flight.forget(self.namespace, self.name)
            raise OperatorStopping(f"PodMigration {self.namespace}/{self.name} is gone")
        self.deps.metrics.in_flight.track(self.namespace, self.name, migration.get("status") or {})
        logcontext.update(migration["spec"].get("podName"), phase_of(migration))
        return migration

    def write(self, migration: Obj, patch: Obj) -> Obj:
        """Patch status, guarded by the resourceVersion of the read it was decided on; return the migration as it
        is now (later steps build on it).

        A conflict (409) where only metadata changed (kopf's finalizer and annotations, a cancel annotation) is
        written again on the new version: the status this patch builds on still holds, and the interrupt checks
        see the new metadata at the next boundary. A conflict where the status changed means another process (a
        second operator still running) moved the migration on: StaleStatus, and the loop decides again.
        """
        for _ in range(WRITE_ATTEMPTS):
            try:
                updated = self.deps.kube.patch_migration_status(
                    self.namespace, self.name, patch, migration["metadata"].get("resourceVersion")
                )
            except Exception as exc:
                if status_code(exc) != 409:
                    raise
                current = self.read()
                if status_of(current) != status_of(migration):
                    raise StaleStatus(
                        f"status changed by another writer (now phase {(current.get('status') or {}).get('phase')})"
                    ) from exc
                migration["metadata"] = current["metadata"]
                continue
            migration["metadata"] = updated.get("metadata") or migration["metadata"]
            migration["status"] = updated.get("status") or st.merged(migration.get("status") or {}, patch)
            return migration
        raise StaleStatus(f"the PodMigration kept changing: {WRITE_ATTEMPTS} status writes in a row conflicted")

    def progress(self, migration: Obj, message: str, reason: str | None = None) -> Obj:
        status = status_of(migration)
        return self.write(
            migration, st.progress(status, message, self.deps.clock(), generation(migration), reason=reason)
        )

    def transition(
        self,
        migration: Obj,
        phase: str,
        extra: Obj | None = None,
        *,
        reason: str | None = None,
        message: str | None = None,
        event_type: str = "Normal",
    ) -> Obj:
        status = status_of(migration)
        patch = st.transition(status, phase, self.deps.clock(), generation(migration), reason=reason, message=message)
        patch.update(extra or {})
        migration = self.write(migration, patch)
        self.deps.metrics.transition(migration.get("status") or {}, status.get("phase"))
        self.announce(migration, event_type, patch["reason"], patch["message"])
        return migration

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Post an Event, best-effort: a lost Event must never fail (and so roll back or repeat) a step."""
        try:
            self.deps.events(obj, type=type_, reason=reason, message=message)
        except Exception as exc:
            log.warning("%s/%s: could not post Event %s: %s", self.namespace, self.name, reason, exc)

    def announce(self, migration: Obj, type_: str, reason: str, message: str) -> None:
        """Event on the PodMigration and on the source pod (the pod's own history shows the move).

        Best-effort: it runs after a phase change was written, and a failure here would otherwise be
        taken for a failure of the step that already finished.
        """
        self.event(migration, type_, reason, message)
        try:
            pod = self.deps.kube.get_pod(self.namespace, migration["spec"]["podName"])
        except Exception as exc:
            log.warning(
                "%s/%s: could not read the source pod to post Event %s: %s", self.namespace, self.name, reason, exc
            )
            return
        if pod is not None:
            self.event(pod, type_, f"Migration{reason}", f"PodMigration {self.name}: {message}")

    def deadline(self, migration: Obj) -> datetime:
        """timeoutSeconds counts from the start (Preparing): time queued behind the limits is not the move's."""
        times = st.phase_times(status_of(migration))
        if phases.PREPARING not in times and phase_of(migration) in (None, phases.PENDING):
            return datetime.max.replace(tzinfo=self.deps.clock().tzinfo)
        start = times.get(phases.PREPARING) or st.parse_time(migration["metadata"]["creationTimestamp"])
        return start + timedelta(seconds=migration["spec"].get("timeoutSeconds", 300))

    def remaining(self, migration: Obj) -> float:
        return max(1.0, (self.deadline(migration) - self.deps.clock()).total_seconds())

    def phase_seconds(self, migration: Obj) -> float:
        """Seconds since the current phase began."""
        status = status_of(migration)
        since = st.phase_times(status).get(status.get("phase") or "")
        return 0.0 if since is None else (self.deps.clock() - since).total_seconds()

    def check_interrupts(self, migration: Obj) -> None:
        """Raise Interrupt for a deletion, cancel or timeout while rolling back is still possible."""
        phase = phase_of(migration)
        cancel = annotations_of(migration).get(api.CANCEL_ANNOTATION) == "true"
        if not phases.can_roll_back(phase):
            if cancel and not self.cancel_ignored_noted:
                self.cancel_ignored_noted = True
                self.event(
                    migration,
                    "Warning",
                    "CancelIgnored",
                    f"cancel requested in phase {phase}: the replacement is already serving",
                )
            return
        if migration["metadata"].get("deletionTimestamp"):
            raise Interrupt(phases.CANCELLED, "Deleted", "the PodMigration was deleted; migration rolled back")
        if cancel:
            raise Interrupt(phases.CANCELLED, "Cancelled", f"cancelled by user in phase {phase or phases.PENDING}")
        if self.deps.clock() >= self.deadline(migration):
            timeout = migration["spec"].get("timeoutSeconds", 300)
            raise Interrupt(
                phases.FAILED,
                "Timeout",
                f"migration did not finish within {timeout}s (phase {phase or phases.PENDING})",
            )

    def sleep(self, seconds: float) -> None:
        """Wait; give up only when the operator exits.

        kopf also raises the stop flag when the PodMigration is deleted, but then it waits for the
        daemon: the rollback must still run, so a deletion keeps sleeping without the flag.
        """
        if not self.stop:
            self.stop.wait(seconds)
        if self.stop:
            if not only_deleted(self.stop.reason):
                raise OperatorStopping(f"operator is stopping ({self.stop.reason})")
            time.sleep(seconds)

    def pause(self, seconds: float) -> Obj:
        """Sleep, then re-read the PodMigration and check interrupts again."""
        self.sleep(seconds)
        migration = self.read()
        self.check_interrupts(migration)
        return migration

    def reached(self, migration: Obj, point: str) -> Obj:
        """A named fault point inside a step (faults.py); returns the migration, re-read after a pause."""
        return self.deps.faults.reached(self, migration, point)

    def helpers(self) -> dict[str, Helper]:
        """Every node's helper; the first incarnation seen of each during a phase is its baseline."""
        pods = self.deps.kube.list_pods(self.deps.config.helper_namespace, api.HELPER_LABEL_SELECTOR)
        helpers = helpers_from_pods(pods, self.deps.config.helper_port)
        for node, helper in helpers.items():
            self.baseline.incarnations.setdefault(node, helper.incarnation)
        return helpers

    def helper(self, node: str) -> Helper:
        helper = self.helpers().get(node)
        if helper is None or not helper.ready:
            raise HelperError(
                node, "discovery", f"no ready podmigration node-helper pod on node {node}", unreachable=True
            )
        return helper

    def source_pod(self, migration: Obj) -> Obj | None:
        """The source pod, if it is still the very pod this migration started with."""
        pod = self.deps.kube.get_pod(self.namespace, migration["spec"]["podName"])
        expected = status_of(migration).get("sourcePodUID")
        if pod is None or (expected and pod["metadata"]["uid"] != expected):
            return None
        return pod

    def require_source(self, migration: Obj) -> Obj:
        pod = self.source_pod(migration)
        if pod is None:
            raise RuntimeError(f"source pod {self.namespace}/{migration['spec']['podName']} disappeared")
        return pod

    def owner(self, pod: Obj) -> Obj | None:
        return owners.read_owner(pod, self.deps.kube.get_owner)


def generation(migration: Obj) -> int | None:
    return migration["metadata"].get("generation")
