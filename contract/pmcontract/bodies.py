"""The JSON bodies of the node-helper's endpoints: requests (what the operator sends) and answers (what the helper
says), one TypedDict each. A field not always present is NotRequired. Every error answer is ErrorAnswer."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ErrorAnswer(TypedDict):
    error: str


class HealthAnswer(TypedDict):
    ok: bool
    node: str


class NodeAnswer(TypedDict):
    """GET /v1/node: what `kubectl migrate check` cannot see through the API, as the helper sees it now."""

    node: str
    #: Whether CRI-O restores containers (enable_criu_support / container_level_enabled); None: unreadable.
    crio_restores: bool | None
    #: Why CRI-O's configuration could not be read ("" when it was).
    crio_error: str
    #: The node's runc.conf for CRIU, and whether the helper's managed block is in it.
    criu_config: str
    criu_block: bool
    #: The node directories searched for CRIU, as runc looks it up on its PATH (nodeHelper.criuSearchPath), and the
    #: node path of the executable `criu` found first there (None: none; an older helper sends neither field).
    criu_searched: list[str]
    criu_path: str | None
    #: The helper's work directory, its free bytes and the bytes kept free there (PM_MIN_FREE_*).
    work_dir: str
    free_bytes: int
    floor_bytes: int


class Recorded(TypedDict):
    """An archive as its checkpoint recorded it: ``bytes`` and either ``sha256`` or ``digest`` (HMAC-SHA256 of the
    sha256 under ``digestKey``, the migration's key)."""

    bytes: int
    sha256: NotRequired[str]
    digest: NotRequired[str]
    digestKey: NotRequired[str]


class CheckpointRequest(TypedDict):
    namespace: str
    pod: str
    container: str
    id: str
    timeoutSeconds: NotRequired[int]
    #: A size the archive is expected to reach (checked against the free space first).
    expectedBytes: NotRequired[int]
    #: Unix time: the container's kubelet archives since then are left by an interrupted call, and deleted.
    discardSince: NotRequired[float]


class CheckpointAnswer(TypedDict):
    id: str
    bytes: int
    sha256: str
    seconds: float
    stats: dict[str, Any]
    statsError: NotRequired[str]
    openFiles: list[dict[str, Any]]
    openFilesError: NotRequired[str]


class PodRequest(TypedDict):
    """POST /v1/freeze, /v1/thaw, /v1/network/cut, /v1/network/restore."""

    podUID: str


class FreezeAnswer(TypedDict):
    frozen: list[str]
    thawed: NotRequired[list[str]]


class NetworkAnswer(TypedDict):
    cut: bool


class KillRequest(TypedDict):
    podUID: str
    thaw: NotRequired[bool]


class KillAnswer(TypedDict):
    killed: int


class MemoryAnswer(TypedDict):
    bytes: int


class SendRequest(TypedDict):
    id: str
    #: The target helper's URL, and its node (whose certificate it must present).
    target: str
    targetNode: str
    compression: NotRequired[str]


class SendAnswer(TypedDict):
    bytes: int
    wireBytes: int
    sha256: str
    seconds: float


class ArchiveAnswer(TypedDict):
    """PUT /v1/archives/{id}: what the receiver stored."""

    bytes: int
    sha256: str


class GrantRequest(TypedDict):
    """Either an archive (``id`` and its Recorded fields) or an ``image`` a peer helper may take."""

    peer: str
    id: NotRequired[str]
    image: NotRequired[str]
    expiresSeconds: NotRequired[int]
    bytes: NotRequired[int]
    sha256: NotRequired[str]
    digest: NotRequired[str]
    digestKey: NotRequired[str]


class GrantAnswer(TypedDict):
    kind: str
    name: str
    peer: str
    expiresSeconds: int


class EnsureImagesRequest(TypedDict):
    images: list[str]
    source: NotRequired[str]
    sourceNode: NotRequired[str]


class EnsureImagesAnswer(TypedDict):
    present: list[str]
    copied: list[str]


class CheckpointImageRequest(Recorded):
    id: str
    container: str
    image: NotRequired[str]


class CheckpointImageAnswer(TypedDict):
    image: str
    reused: NotRequired[bool]


class RestoredAnswer(TypedDict):
    containers: dict[str, bool]


class SettleRequest(TypedDict):
    namespace: str
    pod: str
    migration: str
    #: container -> its original image
    images: dict[str, str]


class SettleAnswer(TypedDict):
    settled: list[str]
    waiting: list[str]


class VolumeRequest(TypedDict):
    """POST /v1/volumes/pack and /v1/volumes/release (with timeoutSeconds)."""

    podUID: str
    volume: str
    id: NotRequired[str]
    timeoutSeconds: NotRequired[int]


class PackAnswer(TypedDict):
    id: str
    bytes: int
    sha256: str
    seconds: float
    files: int


class UnpackRequest(Recorded):
    podUID: str
    volume: str
    id: str
    #: file path -> size the moved copy is cut to (files the processes held open)
    truncate: NotRequired[dict[str, int]]
    timeoutSeconds: NotRequired[int]


class UnpackAnswer(TypedDict):
    bytes: int
    files: int
    seconds: float
    truncated: list[str]
    stripped: list[str]


class ReleaseAnswer(TypedDict):
    released: bool


class ProgressAnswer(TypedDict):
    id: str
    step: str
    bytesDone: int
    bytesExpected: int
    seconds: float
    bytesPerSecond: int


class MigrationsAnswer(TypedDict):
    migrations: list[str]


class DeleteMigrationAnswer(TypedDict):
    deleted: list[str]
    kept: list[dict[str, str]]
    inUse: list[str]


class CriuOptionsAnswer(TypedDict):
    removed: bool
