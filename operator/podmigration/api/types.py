"""The PodMigration's spec and status as types, and the one ``Obj`` every other object is.

crds/podmigration.yaml is the schema; tests/operator/api/test_api_types.py holds these types and it to the same
fields, both ways. Every field is optional (``total=False``) where the API server may leave it out: a status is
written field by field as the migration goes, and a patch sets a finished record (``handover``, ``rollback``) to
None to delete it.
"""

# No ``from __future__ import annotations``: TypedDict reads Required[...] when the class is made (Python 3.11).
from collections.abc import Mapping
from typing import Any, Required, TypedDict, cast

#: Any Kubernetes object, or part of one, as the API server returns it (JSON as dicts).
Obj = dict[str, Any]


class PodMigrationSpec(TypedDict, total=False):
    podName: Required[str]
    targetNode: str
    timeoutSeconds: int
    queueTimeoutSeconds: int
    compression: str
    keepSource: bool
    ttlSecondsAfterFinished: int


class Condition(TypedDict, total=False):
    type: Required[str]
    status: Required[str]
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: int


class PhaseTransition(TypedDict):
    phase: str
    time: str


class Durations(TypedDict, total=False):
    checkpoint: float
    transfer: float
    restore: float
    downtime: float
    total: float


class Progress(TypedDict, total=False):
    """What the step in flight has done of one item (container archive, volume, image), from the helper's count."""

    step: str
    item: str
    bytesDone: int
    bytesExpected: int
    bytesPerSecond: int
    updatedAt: str


class CriuStats(TypedDict, total=False):
    """CRIU's own dump statistics (microseconds, pages), camelCased from the helper's answer."""

    freezingTime: int
    frozenTime: int
    memdumpTime: int
    memwriteTime: int
    pagesScanned: int
    pagesWritten: int


class ContainerRecord(TypedDict, total=False):
    """One container's checkpoint: written in Checkpointing, completed in Transferring and Restoring."""

    name: Required[str]
    checkpointBytes: int
    checkpointSeconds: float
    digest: str
    transferredBytes: int
    wireBytes: int
    transferSeconds: float
    image: str
    criu: CriuStats


class VolumeRecord(TypedDict, total=False):
    """One emptyDir volume's content, copied while the source is frozen."""

    name: Required[str]
    medium: str
    id: str
    bytes: int
    files: int
    digest: str
    packSeconds: float
    transferredBytes: int
    wireBytes: int
    transferSeconds: float
    unpackSeconds: float
    truncate: dict[str, int]
    truncated: list[str]


class OwnerRecord(TypedDict, total=False):
    """The source pod's controller as Preparing found it (a change since rolls the migration back)."""

    kind: str
    apiVersion: str
    name: str
    uid: str
    generation: int


class Handover(TypedDict):
    """A StatefulSet pod handed over: the owner's recreated pod of this name is made the restore."""

    pod: str


class Rollback(TypedDict):
    """A rollback under way, and the outcome it ends in."""

    phase: str
    reason: str
    message: str


class PodMigrationStatus(TypedDict, total=False):
    phase: str
    reason: str
    message: str
    sourceNode: str
    targetNode: str
    targetPod: str
    sourcePodUID: str
    observedGeneration: int
    conditions: list[Condition]
    phaseTransitions: list[PhaseTransition]
    durations: Durations
    progress: Progress
    checkpointBytes: int
    transferredBytes: int
    containers: list[ContainerRecord]
    digestKey: str
    originalImages: dict[str, str]
    sourceRestoredBy: str
    sourceRestarts: dict[str, int]
    owner: OwnerRecord
    handover: Handover | None
    expectedDowntime: float
    warnings: list[str]
    volumes: list[VolumeRecord]
    rollback: Rollback | None


def status_of(migration: Mapping[str, Any]) -> PodMigrationStatus:
    """A PodMigration's status; empty before the operator first wrote it."""
    return cast(PodMigrationStatus, migration.get("status") or {})


def phase_of(migration: Mapping[str, Any]) -> str | None:
    """A PodMigration's phase; None before the operator accepted it."""
    return status_of(migration).get("phase")


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """Any object's annotations; empty when it has none."""
    return cast(dict[str, str], obj["metadata"].get("annotations") or {})


def handover_pod(migration: Mapping[str, Any]) -> str | None:
    """The pod a StatefulSet hand-over of this migration recreates, while one is under way."""
    handover = status_of(migration).get("handover")
    return handover.get("pod") if handover else None
