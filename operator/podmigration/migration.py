"""Drives one PodMigration through its phases; every step restarts safely from the recorded status.

Each loop iteration re-reads the PodMigration, so the status in the cluster is the only state:
an operator restart, a cancel annotation, a deletion or the timeout is seen at the next step
boundary (and while waiting for the replacement pod). A step either finishes and moves the
phase forward, or raises; before Finalizing any failure rolls back (replacement deleted, source
thawed and put back into traffic, archives and checkpoint images deleted) and ends Failed or
Cancelled. From Finalizing on the replacement is serving, so steps are retried until done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from kopf import DaemonStoppingReason

from . import api, fencing, handover, limits, owners, phases, podspec, sourcehealth, volumes
from . import status as st
from .config import Config
from .events import EventSink
from .helperclient import Helper, HelperClient, HelperError, helpers_from_pods
from .kube import Kube, api_message, status_code
from .preflight import preflight
from .refusals import Refusal

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: How long a rollback waits for the deleted replacement to disappear before it retries.
REPLACEMENT_GONE_SECONDS = 60

#: How long a successful migration waits for the source's kubelet to start stopping the deleted source before
#: it thaws the (already killed) processes anyway.
KUBELET_STOPPING_SECONDS = 10

#: How often a queued migration looks for a free slot.
QUEUED_POLL_SECONDS = 1.0

#: How often fencing the source pod is tried when the pod changes under it (HTTP 409).
FENCE_ATTEMPTS = 5

#: Waiting reasons after which a replacement container will not start by itself.
_HOPELESS_WAITING = frozenset({"CreateContainerError", "CreateContainerConfigError", "ErrImageNeverPull",
                               "InvalidImageName", "RunContainerError", "ImageInspectError"})


class StopFlag(Protocol):
    """kopf's daemon stop flag (kopf.DaemonStopped): truthy when kopf wants the daemon to exit.

    ``reason`` is a kopf.DaemonStoppingReason (a flag, possibly combined) once it is raised.
    """

    def __bool__(self) -> bool: ...

    @property
    def reason(self) -> DaemonStoppingReason | None: ...

    def wait(self, timeout: float | None = None) -> Any: ...


def _only_deleted(reason: DaemonStoppingReason | None) -> bool:
    """Whether kopf stops the daemon because the PodMigration is being deleted, and not for the operator's exit."""
    return (reason is not None and bool(reason & DaemonStoppingReason.RESOURCE_DELETED)
            and not reason & (DaemonStoppingReason.OPERATOR_EXITING | DaemonStoppingReason.OPERATOR_PAUSING))


class Interrupt(Exception):
    """Ends the forward path: rollback follows, then the migration ends in ``outcome``."""

    def __init__(self, outcome: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.outcome, self.reason, self.message = outcome, reason, message


class OperatorStopping(Exception):
    """The operator is exiting: leave the status as it is, a restarted operator resumes."""


@dataclass
class Deps:
    kube: Kube
    helpers: HelperClient
    config: Config
    events: EventSink
    clock: Callable[[], datetime] = st.utcnow


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def criu_stats(raw: Obj) -> Obj:
    """The helper's stats-dump fields (snake_case, microseconds) in API style (camelCase)."""
    return {_camel(k): v for k, v in (raw or {}).items() if isinstance(v, (int, float))}


def _failure_reason(phase: str) -> str:
    return f"{phase}Failed"


class MigrationRunner:
    """One PodMigration's state machine; ``run`` returns when it is terminal or the operator stops."""

    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.d = deps
        self.namespace = namespace
        self.name = name
        self._cancel_ignored_noted = False

    # -- reading and writing the PodMigration -------------------------------------------------

    def _read(self) -> Obj:
        migration = self.d.kube.get_migration(self.namespace, self.name)
        if migration is None:
            raise OperatorStopping(f"PodMigration {self.namespace}/{self.name} is gone")
        return migration

    def _write(self, migration: Obj, patch: Obj) -> Obj:
        """Patch status and return the migration as it is now (later steps build on it)."""
        updated = self.d.kube.patch_migration_status(self.namespace, self.name, patch)
        migration["status"] = updated.get("status") or st.merged(migration.get("status") or {}, patch)
        return migration

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

    # -- interrupts -----------------------------------------------------------------------------

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

    # -- the loop -------------------------------------------------------------------------------

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
        while True:
            try:
                migration = self._read()
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
                    steps[phase](migration, stop)
                except Interrupt as interrupt:
                    self._begin_rollback(migration, interrupt)
                except OperatorStopping:
                    raise
                except Exception as exc:  # every other failure of a step is reported, never swallowed
                    self._step_failed(migration, phase, exc, stop)
            except OperatorStopping as why:
                log.info("%s/%s: %s; leaving the status for the next run", self.namespace, self.name, why)
                return
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

    # -- helpers and pods -------------------------------------------------------------------------

    def _helpers(self) -> dict[str, Helper]:
        pods = self.d.kube.list_pods(self.d.config.helper_namespace, api.HELPER_LABEL_SELECTOR)
        return helpers_from_pods(pods, self.d.config.helper_port)

    def _helper(self, node: str) -> Helper:
        helper = self._helpers().get(node)
        if helper is None or not helper.ready:
            raise RuntimeError(f"no ready podmigration node-helper on node {node}")
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

    # -- forward steps ----------------------------------------------------------------------------

    def _accept(self, migration: Obj, stop: StopFlag) -> Obj:
        at = self.d.clock()
        patch = {
            "phase": phases.PENDING,
            "reason": phases.PENDING,
            "message": "migration accepted",
            "phaseTransitions": [{"phase": phases.PENDING, "time": st.format_time(at)}],
            "conditions": st.conditions_for([], phases.PENDING, phases.PENDING, "migration accepted", at,
                                            self._generation(migration)),
            "observedGeneration": self._generation(migration),
        }
        return self._write(migration, patch)

    def _start(self, migration: Obj, stop: StopFlag) -> Obj:
        """Start when the per-node and per-cluster limits leave a slot (oldest first); wait in Pending until then."""
        pod = self.d.kube.get_pod(self.namespace, migration["spec"]["podName"])
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        with limits.START_LOCK:
            waiting = limits.why_waiting(migration, node, self.d.kube.list_migrations(None),
                                         self.d.config.max_outbound_per_node, self.d.config.max_per_cluster)
            if waiting is None:
                # sourceNode with the phase: the next migration counted under the lock must see where this one runs.
                return self._transition(migration, phases.PREPARING, {"sourceNode": node},
                                        message="validating the pod and the target node")
        status = migration.get("status") or {}
        if status.get("message") != waiting or status.get("sourceNode") != node:
            migration = self._write(migration, {"sourceNode": node, **st.progress(
                status, waiting, self.d.clock(), self._generation(migration), reason="Queued")})
        return self._pause(QUEUED_POLL_SECONDS, stop)

    def _prepare(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration.get("status") or {}
        spec = dict(migration["spec"])
        spec["targetNode"] = status.get("targetNode") or spec.get("targetNode")
        pod = self.d.kube.get_pod(self.namespace, spec["podName"])
        helpers = self._helpers()
        claims = volumes.read_claims(pod, lambda name: self.d.kube.get_claim(self.namespace, name),
                                     self.d.kube.get_volume) if pod else {}
        owner = owners.read_owner(pod, self.d.kube.get_owner) if pod else None
        plan = preflight(spec, self.namespace, pod, self.d.kube.list_nodes(),
                         {node: h.ready for node, h in helpers.items()}, self.name, claims, owner)
        if not plan.ok:
            first: Refusal = plan.refusals[0]
            raise Interrupt(phases.FAILED, first.reason, "; ".join(r.message for r in plan.refusals))
        assert pod is not None and plan.source_node and plan.target_node
        memory = self.d.helpers.pod_memory(helpers[plan.source_node], pod["metadata"]["uid"])
        expected = sourcehealth.expected_downtime(memory, self.d.config.downtime_base_seconds,
                                                  self.d.config.downtime_seconds_per_gib)
        warnings = sourcehealth.liveness_warnings(pod, expected)
        migration = self._write(migration, {
            "sourceNode": plan.source_node,
            "targetNode": plan.target_node,
            "targetPod": (pod["metadata"]["name"] if owners.strategy_for(pod).same_name
                          else podspec.replacement_name(pod["metadata"]["name"], migration["metadata"]["uid"])),
            "sourcePodUID": pod["metadata"]["uid"],
            "sourceRestarts": sourcehealth.restart_counts(pod),
            "owner": owners.strategy_for(pod).record(owner),
            "expectedDowntime": expected,
            "warnings": warnings,
        })
        for warning in warnings:
            self._event(migration, "Warning", "LivenessProbeRisk", warning)
        images = podspec.base_images(pod)
        self._progress(migration, f"making sure {len(images)} base image(s) are on {plan.target_node}")
        self.d.helpers.ensure_images(helpers[plan.target_node], images, helpers[plan.source_node],
                                     timeout=self._remaining(migration))
        return self._transition(migration, phases.CHECKPOINTING,
                                message=f"fencing and checkpointing on {plan.source_node}")

    def _fence(self, migration: Obj, pod: Obj) -> Obj:
        """Fence the source pod; a concurrent change (409) re-reads the pod and checks the lock again."""
        for attempt in range(1, FENCE_ATTEMPTS + 1):
            owner = fencing.fenced_by(pod)
            if owner == self.name:
                return pod
            if owner:
                raise Interrupt(phases.FAILED, "AlreadyMigrating",
                                f"pod {self.namespace}/{pod['metadata']['name']} is already being migrated by "
                                f"PodMigration {owner}")
            keys = owners.strategy_for(pod).fence_keys(pod, self._owner(pod),
                                                       fencing.service_keys(pod, self.d.kube.list_services(
                                                           self.namespace)))
            try:
                return self.d.kube.patch_pod(self.namespace, pod["metadata"]["name"],
                                             fencing.fence_patch(pod, keys, self.name))
            except Exception as exc:
                if status_code(exc) != 409 or attempt == FENCE_ATTEMPTS:
                    raise
                log.info("%s/%s: pod %s changed while fencing it; retrying", self.namespace, self.name,
                         pod["metadata"]["name"])
            pod = self._require_source(migration)
        raise AssertionError("unreachable")

    def _checkpoint(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        source = self._helper(status["sourceNode"])
        pod = self._require_source(migration)
        if fencing.fenced_by(pod) == self.name:
            # Resumed after a restart: the pod may already be frozen, and CRIU must dump a running pod.
            self.d.helpers.thaw(source, pod["metadata"]["uid"])
        pod = self._fence(migration, pod)
        removed = fencing.fenced_labels(pod)
        # Before the first dump: from here on nothing from outside reaches the processes, over new or
        # established connections, so every reply a client got reflects state the dumps contain.
        self.d.helpers.network_cut(source, pod["metadata"]["uid"])
        self._event(pod, "Normal", "MigrationFenced",
                    f"PodMigration {self.name}: network cut and out of Service traffic (labels {sorted(removed)} "
                    "removed)")
        uid = migration["metadata"]["uid"]
        containers: list[Obj] = []
        open_files: dict[str, list[Obj]] = {}
        for container in pod["spec"]["containers"]:
            result = self.d.helpers.checkpoint(source, self.namespace, pod["metadata"]["name"], container["name"],
                                               api.checkpoint_id(uid, container["name"]),
                                               timeout=self._remaining(migration))
            open_files[container["name"]] = result.get("openFiles") or []
            containers.append({"name": container["name"], "checkpointBytes": result.get("bytes", 0),
                               "sha256": result.get("sha256", ""), "checkpointSeconds": result.get("seconds", 0),
                               "criu": criu_stats(result.get("stats") or {})})
            migration = self._write(migration, {"containers": containers,
                                                "checkpointBytes": sum(c["checkpointBytes"] for c in containers)})
            self._progress(migration, f"checkpointed container {container['name']}")
        self.d.helpers.freeze(source, pod["metadata"]["uid"])
        moved = self._pack_volumes(migration, pod, source, open_files)
        return self._transition(migration, phases.TRANSFERRING,
                                message=f"source frozen; sending {len(containers)} archive(s) and {len(moved)} "
                                        f"volume(s) to {status['targetNode']}")

    def _pack_volumes(self, migration: Obj, pod: Obj, source: Helper, open_files: dict[str, list[Obj]]) -> list[Obj]:
        """Copy each emptyDir while the source is frozen; files open at the dump get their dump-time size."""
        uid = migration["metadata"]["uid"]
        cut_back = volumes.truncations(pod, open_files)
        moved: list[Obj] = []
        for volume in volumes.moved_volumes(pod):
            archive = api.volume_archive_id(uid, volume["name"])
            result = self.d.helpers.pack_volume(source, pod["metadata"]["uid"], volume["name"], archive,
                                                timeout=self._remaining(migration))
            moved.append({**volume, "id": archive, "bytes": result.get("bytes", 0), "sha256": result.get("sha256", ""),
                          "files": result.get("files", 0), "packSeconds": result.get("seconds", 0),
                          "truncate": cut_back.get(volume["name"], {})})
            migration = self._write(migration, {"volumes": moved})
            self._progress(migration, f"copied volume {volume['name']} ({result.get('bytes', 0)} bytes)")
        return moved

    def _transfer(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        source, target = self._helper(status["sourceNode"]), self._helper(status["targetNode"])
        uid = migration["metadata"]["uid"]
        lists = {"containers": [dict(c) for c in status.get("containers") or []],
                 "volumes": [dict(v) for v in status.get("volumes") or []]}
        for key, items in lists.items():
            for item in items:
                if item.get("transferredBytes") is not None:
                    continue  # already on the target, verified by its sha256
                archive = item.get("id") or api.checkpoint_id(uid, item["name"])
                result = self.d.helpers.send(source, archive, target, migration["spec"].get("compression", "zstd"),
                                             timeout=self._remaining(migration))
                if result.get("sha256") and item.get("sha256") and result["sha256"] != item["sha256"]:
                    raise RuntimeError(f"archive {archive} changed between its checkpoint and its transfer")
                item.update(transferredBytes=result.get("bytes", 0), wireBytes=result.get("wireBytes", 0),
                            transferSeconds=result.get("seconds", 0))
                migration = self._write(migration, {
                    key: items,
                    # Top level: bytes on the wire (after compression), as the CRD says; per item,
                    # transferredBytes is the archive size delivered and wireBytes what it took on the wire.
                    "transferredBytes": sum(i.get("wireBytes") or 0 for group in lists.values() for i in group)})
                self._progress(migration, f"sent {key[:-1]} {item['name']}")
        return self._transition(migration, phases.RESTORING, message=f"restoring on {status['targetNode']}")

    def _restore(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        target = self._helper(status["targetNode"])
        uid = migration["metadata"]["uid"]
        containers = [dict(c) for c in status.get("containers") or []]
        for container in containers:
            if container.get("image"):
                continue
            image = api.checkpoint_image(uid, container["name"])
            self.d.helpers.build_checkpoint_image(target, api.checkpoint_id(uid, container["name"]),
                                                  container["name"], image, sha256=container.get("sha256", ""),
                                                  size=container.get("checkpointBytes", 0),
                                                  timeout=self._remaining(migration))
            container["image"] = image
            migration = self._write(migration, {"containers": containers})
        if owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
            if self._source_pod(migration) is not None:
                self._check_owner(migration)  # last moment to roll back: the source is deleted next
            replacement = self._handed_over_replacement(migration, stop)
        else:
            replacement = self._ensure_replacement(migration)
        migration = self._place_volumes(migration, replacement, target)
        name = replacement["metadata"]["name"]
        self._progress(migration, f"waiting for pod {name} to be Running and Ready on {status['targetNode']}")
        while not self._pod_ready(replacement):
            migration = self._pause(self.d.config.poll_seconds, stop)
            replacement = self.d.kube.get_pod(self.namespace, name)
            if replacement is None:
                raise RuntimeError(f"replacement pod {name} disappeared")
        restored = self.d.helpers.restored(target, self.namespace, name)
        fresh = sorted(c["name"] for c in containers if not restored.get(c["name"]))
        if fresh:
            raise RuntimeError(f"containers {', '.join(fresh)} of pod {name} started fresh instead of being restored")
        # The restored containers exist: the checkpoint images (all of the pod's memory) and archives on the target
        # are of no more use, and any pod could start from such an image while it is there.
        self._cleanup_node(migration, status["targetNode"], target)
        if not owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
            self._check_owner(migration)  # the hand-over to it comes next, in Finalizing
        return self._transition(migration, phases.FINALIZING,
                                message=f"pod {name} is Running, Ready and restored on {status['targetNode']}")

    def _place_volumes(self, migration: Obj, replacement: Obj, target: Helper) -> Obj:
        """Unpack each moved volume into the replacement's emptyDir, then let its restored containers start.

        Each unpack is recorded, so a resumed step never unpacks again over a volume the restored
        containers may already use; the release is idempotent.
        """
        moved = [dict(v) for v in (migration["status"].get("volumes") or [])]
        if not moved:
            return migration
        uid = replacement["metadata"]["uid"]
        for volume in moved:
            if volume.get("unpackSeconds") is not None:
                continue
            result = self.d.helpers.unpack_volume(target, uid, volume["name"], volume["id"],
                                                  volume.get("truncate") or {}, sha256=volume.get("sha256", ""),
                                                  size=volume.get("bytes", 0), timeout=self._remaining(migration))
            volume.update(unpackSeconds=result.get("seconds", 0), truncated=result.get("truncated") or [])
            migration = self._write(migration, {"volumes": moved})
        self.d.helpers.release_volumes(target, uid, api.VOLUMES_GATE_VOLUME, timeout=self._remaining(migration))
        return self._progress(migration, f"{len(moved)} volume(s) in place on {migration['status']['targetNode']}")

    def _handed_over_replacement(self, migration: Obj, stop: StopFlag) -> Obj:
        """The owner recreates the pod under its own name: list it for the webhook, end the source (killed
        frozen), then wait for the owner's new pod, which the webhook has made the restore.

        From the source's deletion on there is no source to roll back to: a rollback then deletes the
        replacement with the webhook no longer matching, and the owner starts the pod fresh.
        """
        status = migration["status"]
        name = status["targetPod"]
        source = self._source_pod(migration)
        if source is not None:
            if not status.get("handover"):
                migration = self._write(migration, {"handover": {"pod": name}})
            self._sync_handover()
            self._progress(migration, f"handing pod {name} over to its {status['owner']['kind']}: the source is killed "
                                      "and deleted, the pod its controller recreates is the restore")
            self._kill_source(source, status["sourceNode"], None, stop)
        while True:
            pod = self.d.kube.get_pod(self.namespace, name)
            if pod is not None and pod["metadata"]["uid"] != status.get("sourcePodUID"):
                if (pod["metadata"].get("annotations") or {}).get(api.MIGRATION_ANNOTATION) != self.name:
                    raise RuntimeError(f"pod {name} was recreated without its restore (the handover webhook did not "
                                       "run): its state is lost")
                return pod
            migration = self._pause(self.d.config.poll_seconds, stop)

    def _check_owner(self, migration: Obj) -> None:
        """Roll back when the pod's owner changed since Preparing (scaled, rolled out, suspended, deleted)."""
        recorded = migration["status"].get("owner") or {}
        if not recorded.get("name"):
            return
        owner = self.d.kube.get_owner(self.namespace, recorded["kind"], recorded["name"],
                                      recorded.get("apiVersion") or "apps/v1")
        changed = owners.by_kind(recorded["kind"]).changed(recorded, owner)
        if changed:
            raise Interrupt(phases.FAILED, "OwnerChanged", f"{changed}; the source is kept and its owner decides")

    def _sync_handover(self) -> None:
        """Rebuild the handover webhook's match condition from every unfinished migration."""
        if not self.d.config.handover_webhook:
            raise RuntimeError("PM_HANDOVER_WEBHOOK is not set: StatefulSet pods cannot be handed over")
        with handover.SYNC_LOCK:
            pods = handover.handed_over(self.d.kube.list_migrations(None))
            self.d.kube.set_webhook_match(self.d.config.handover_webhook, handover.match_expression(pods))

    def _end_handover(self, migration: Obj) -> Obj:
        if not (migration.get("status") or {}).get("handover"):
            return migration
        migration = self._write(migration, {"handover": None})
        self._sync_handover()
        return migration

    def _ensure_replacement(self, migration: Obj) -> Obj:
        """Create the replacement once; a pod of that name that is not ours is an error, not adopted."""
        status = migration["status"]
        name = status["targetPod"]
        existing = self.d.kube.get_pod(self.namespace, name)
        if existing is None:
            source = self._require_source(migration)
            body = podspec.replacement_pod(source, migration_name=self.name,
                                           migration_uid=migration["metadata"]["uid"],
                                           target_node=status["targetNode"])
            owners.strategy_for(source).shape_replacement(body, source, self._owner(source))
            if status.get("volumes"):
                if not self.d.config.image:
                    raise RuntimeError("PM_IMAGE is not set: the replacement's volume gate needs the operator's image")
                volumes.add_volumes_gate(body, source, self.d.config.image)
            return self.d.kube.create_pod(self.namespace, body)
        if (existing["metadata"].get("annotations") or {}).get(api.MIGRATION_ANNOTATION) != self.name:
            raise RuntimeError(f"a pod named {name} already exists and was not created by this migration")
        return existing

    def _pod_ready(self, pod: Obj) -> bool:
        """Ready, or raise at once when the pod can no longer become Ready (waiting out the timeout helps nobody)."""
        status = pod.get("status") or {}
        if status.get("phase") in ("Failed", "Succeeded"):
            raise RuntimeError(f"replacement pod {pod['metadata']['name']} ended with phase {status['phase']}: "
                               f"{status.get('message') or status.get('reason') or 'no message'}")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            terminated = (container.get("state") or {}).get("terminated") or {}
            if waiting.get("reason") in _HOPELESS_WAITING or terminated or container.get("restartCount"):
                why = waiting.get("message") or waiting.get("reason") or terminated.get("reason") or "restarted"
                raise RuntimeError(f"container {container['name']} of replacement pod {pod['metadata']['name']} "
                                   f"failed: {why}")
        return status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])

    def _finalize(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        source_pod = self._source_pod(migration)
        if source_pod is not None:
            if migration["spec"].get("keepSource"):
                self._release_source(source_pod, status["sourceNode"])
            else:
                self._kill_source(source_pod, status["sourceNode"],
                                  self.d.kube.get_pod(self.namespace, status["targetPod"]), stop)
        migration = self._end_handover(migration)
        self._cleanup(migration)
        kept = " (source kept running)" if migration["spec"].get("keepSource") else ""
        return self._transition(migration, phases.SUCCEEDED,
                                message=f"pod {status['targetPod']} runs on {status['targetNode']}{kept}")

    # -- rollback -----------------------------------------------------------------------------------

    def _begin_rollback(self, migration: Obj, interrupt: Interrupt) -> None:
        rollback = {"phase": interrupt.outcome, "reason": interrupt.reason, "message": interrupt.message}
        patch = st.progress(migration.get("status") or {}, f"rolling back: {interrupt.message}", self.d.clock(),
                            self._generation(migration), reason="RollingBack")
        patch["rollback"] = rollback
        self._write(migration, patch)
        self._announce(migration, "Warning", "RollingBack", interrupt.message)

    def _kill_source(self, pod: Obj, node: str, replacement: Obj | None, stop: StopFlag) -> None:
        """End the source without letting its processes run again: their state lives on in the replacement.

        SIGKILL is queued while the pod is frozen, which makes the kernel drop any later SIGTERM; only then is
        the pod deleted, so the kubelet (which never restarts a container of a deleted pod) stops it without a
        preStop hook or SIGTERM handler ever running; the thaw waits until the kubelet has begun stopping it
        (its Killing Event), so the death it sees is never taken for a crash to restart from.
        """
        helper, uid, name = self._helper(node), pod["metadata"]["uid"], pod["metadata"]["name"]
        killed = self.d.helpers.kill(helper, uid, thaw=False).get("killed", 0)
        if replacement is not None:
            owners.strategy_for(pod).hand_over(self.d.kube, self.namespace, pod, replacement)
        self.d.kube.delete_pod(self.namespace, name, uid)
        deadline = self.d.clock() + timedelta(seconds=KUBELET_STOPPING_SECONDS)
        while self.d.clock() < deadline and self._source_pod_present(name, uid) and not any(
                e.get("reason") == "Killing" for e in self.d.kube.pod_events(self.namespace, name, uid)):
            self._sleep(self.d.config.poll_seconds, stop)
        try:
            self.d.helpers.thaw(helper, uid)
        except HelperError as exc:
            if exc.status != 404:
                raise
            log.info("%s/%s: source %s already gone at the thaw: %s", self.namespace, self.name, name, exc)
        log.info("%s/%s: source pod %s killed while frozen (%s processes) and deleted", self.namespace, self.name,
                 name, killed)

    def _source_pod_present(self, name: str, uid: str) -> bool:
        pod = self.d.kube.get_pod(self.namespace, name)
        return pod is not None and pod["metadata"]["uid"] == uid

    def _release_source(self, pod: Obj, node: str) -> None:
        """Thaw the source, reconnect its network and put it back into Service traffic, as it was before.

        Only a pod this migration fenced can have been frozen or cut by it (the fence comes first and is
        removed last), so another migration's pod is never thawed.
        """
        patch = fencing.unfence_patch(pod, self.name)
        if patch is None:
            return
        helper = self._helper(node)
        self.d.helpers.thaw(helper, pod["metadata"]["uid"])
        self.d.helpers.network_restore(helper, pod["metadata"]["uid"])
        self.d.kube.patch_pod(self.namespace, pod["metadata"]["name"], patch)

    def _cleanup(self, migration: Obj) -> None:
        """Delete this migration's archives and checkpoint images on both nodes (idempotent).

        Best-effort per node: a node without a ready helper (gone, drained, helper uninstalled) would
        otherwise keep the migration from ever ending; what is left there is reported in an Event.
        """
        status = migration.get("status") or {}
        nodes = list(dict.fromkeys(n for n in (status.get("sourceNode"), status.get("targetNode")) if n))
        helpers = self._helpers() if nodes else {}
        for node in nodes:
            self._cleanup_node(migration, node, helpers.get(node))

    def _cleanup_node(self, migration: Obj, node: str, helper: Helper | None) -> None:
        if helper is None or not helper.ready:
            log.warning("%s/%s: no ready node-helper on node %s; cleanup skipped there", self.namespace,
                        self.name, node)
            self._event(migration, "Warning", "CleanupSkipped",
                        f"no ready podmigration node-helper on node {node}: this migration's checkpoint "
                        f"archives and images may remain on that node")
            return
        answer = self.d.helpers.cleanup(helper, migration["metadata"]["uid"])
        kept = [k.get("image", "?") if isinstance(k, dict) else str(k) for k in answer.get("kept") or []]
        if kept:
            self._event(migration, "Warning", "CleanupIncomplete",
                        f"node-helper on node {node} kept checkpoint image(s) still in use: {', '.join(kept)}")

    def _discard_replacement(self, replacement: Obj, stop: StopFlag) -> None:
        """Kill the never-promoted copy and wait until it is gone, so that it never answers beside the
        source once that is back in traffic (it carries the same labels).

        One second of grace, not 0: 0 is a force delete, the API object vanishes before the kubelet has
        stopped the containers, so the wait below would prove nothing. With 1 the kubelet kills the
        containers within a second and only then removes the object.
        """
        name, uid = replacement["metadata"]["name"], replacement["metadata"]["uid"]
        self.d.kube.delete_pod(self.namespace, name, uid, grace_seconds=1)
        deadline = self.d.clock() + timedelta(seconds=REPLACEMENT_GONE_SECONDS)
        while (pod := self.d.kube.get_pod(self.namespace, name)) is not None and pod["metadata"]["uid"] == uid:
            if self.d.clock() >= deadline:
                raise RuntimeError(f"replacement pod {name} is still terminating")
            self._sleep(self.d.config.poll_seconds, stop)

    def _restart_checked(self, migration: Obj, pod: Obj, rollback: Obj) -> Obj:
        """The rollback's outcome, with reason SourceRestarted when the source's kubelet restarted or killed it
        while it was cut off and frozen: then no old process resumed, and saying so would be false."""
        since = st.phase_times(migration["status"]).get(phases.CHECKPOINTING)
        if since is None:
            return rollback
        current = self.d.kube.get_pod(self.namespace, pod["metadata"]["name"]) or pod
        why = sourcehealth.restart_evidence(current, migration["status"].get("sourceRestarts") or {},
                                            self.d.kube.pod_events(self.namespace, pod["metadata"]["name"],
                                                                   pod["metadata"]["uid"]), since)
        if why is None:
            return rollback
        return {**rollback, "reason": "SourceRestarted",
                "message": f"{rollback['message']}; rolled back, but {why}: its state since the migration began "
                           "is lost"}

    def _roll_back(self, migration: Obj, stop: StopFlag) -> None:
        """Undo whatever the forward steps did, then end in the recorded outcome; retried until done."""
        status = migration["status"]
        rollback = status["rollback"]
        touched = status.get("phase") in (phases.CHECKPOINTING, phases.TRANSFERRING, phases.RESTORING)
        try:
            # First, so that an owner recreating the discarded pod starts it fresh, not as a restore.
            migration = self._end_handover(migration)
            replacement = self.d.kube.get_pod(self.namespace, status["targetPod"]) if status.get("targetPod") else None
            if replacement and (replacement["metadata"].get("annotations") or {}).get(
                    api.MIGRATION_ANNOTATION) == self.name:
                self._discard_replacement(replacement, stop)
            source_pod = self._source_pod(migration)
            if source_pod is not None and touched:
                self._release_source(source_pod, status["sourceNode"])
                rollback = self._restart_checked(migration, source_pod, rollback)
            if touched:
                self._cleanup(migration)
        except OperatorStopping:
            raise  # not a failed rollback step: the operator exits, the next run resumes the rollback
        except Exception as exc:
            message = api_message(exc) if status_code(exc) else str(exc)
            log.warning("%s/%s: rollback step failed: %s", self.namespace, self.name, message)
            self._progress(migration, f"rollback retrying in {self.d.config.retry_seconds:g}s: {message}",
                           reason="RollingBack")
            self._sleep(self.d.config.retry_seconds, stop)
            return
        self._transition(migration, rollback["phase"], {"rollback": None}, reason=rollback["reason"],
                         message=rollback["message"], event_type="Warning")

