"""The node-helper's endpoints: paths, some with {name} parameters (one path element each), and their query keys."""

from __future__ import annotations

from urllib.parse import quote

HEALTHZ = "/healthz"
#: GET, without a client certificate (like HEALTHZ): what the node shows of its readiness (bodies.NodeAnswer).
NODE = "/v1/node"
CHECKPOINT = "/v1/checkpoint"
FREEZE = "/v1/freeze"
THAW = "/v1/thaw"
SEND = "/v1/send"
#: PUT by the sending helper: the archive's bytes.
ARCHIVE = "/v1/archives/{id}"
GRANTS = "/v1/grants"
IMAGES_ENSURE = "/v1/images/ensure"
IMAGES_CHECKPOINT = "/v1/images/checkpoint"
#: GET by the target helper, query IMAGE_QUERY: the image as a zstd OCI archive.
IMAGES_EXPORT = "/v1/images/export"
IMAGE_QUERY = "image"
#: GET, query NAMESPACE_QUERY and POD_QUERY: which containers of the pod were restored from a checkpoint.
RESTORED = "/v1/restored"
NAMESPACE_QUERY = "namespace"
POD_QUERY = "pod"
SETTLE = "/v1/restored/settle"
NETWORK_CUT = "/v1/network/cut"
NETWORK_RESTORE = "/v1/network/restore"
KILL = "/v1/kill"
POD_MEMORY = "/v1/pods/{uid}/memory"
VOLUMES_PACK = "/v1/volumes/pack"
VOLUMES_UNPACK = "/v1/volumes/unpack"
VOLUMES_RELEASE = "/v1/volumes/release"
PROGRESS = "/v1/progress/{id}"
#: GET: the migrations with anything on the node; DELETE MIGRATION (query ALIASES_QUERY=true): remove one's things.
MIGRATIONS = "/v1/migrations"
MIGRATION = "/v1/migrations/{uid}"
ALIASES_QUERY = "aliases"
CRIU_OPTIONS = "/v1/criu-options"


def path(template: str, **params: str) -> str:
    """A template with its parameters filled in, each quoted as one path element."""
    return template.format(**{name: quote(value, safe="") for name, value in params.items()})
