"""Names both sides build or parse: certificate CNs, archive ids, checkpoint image names, the gate file, headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: The CN of the operator's client certificate: the only caller of the control endpoints.
OPERATOR_CN = "system:podmigration:operator"
#: The CN of a node-helper's certificate is this prefix and its node's name (one certificate per node).
HELPER_CN_PREFIX = "system:podmigration:node-helper:"
#: The CSR signer name the operator signs helper certificates as.
DEFAULT_SIGNER = "podmigration.dev/node-helper"

#: Where the target helper builds checkpoint images (and pointer images): one per archive, tag TAG.
CHECKPOINT_IMAGE_REPOSITORY = "localhost/podmigration-checkpoint"
CHECKPOINT_IMAGE_TAG = "latest"

#: The file the target helper writes in the replacement pod's gate emptyDir once its volumes are in place
#: (POST /v1/volumes/release); the gate init container waits for it.
GATE_FILE = "done"

#: The sha256 (hex) of an archive or image stream, sent with it.
SHA256_HEADER = "X-Content-Sha256"
#: The archive's size before Content-Encoding, set by the sending helper so the receiver can bound the stream by it.
DECODED_LENGTH_HEADER = "X-Content-Length-Decoded"

_MIGRATION_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=-)")


def common_name(cert: Mapping[str, Any] | None) -> str:
    """The subject CN of a peer certificate as ``SSLSocket.getpeercert()`` returns it ("" if none): every mutual-TLS
    party here (operator, helpers, the webhooks' caller check) authorizes by it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def helper_cn(node: str) -> str:
    """The CN of the helper of ``node``."""
    return HELPER_CN_PREFIX + node


def helper_node(cn: str) -> str | None:
    """The node whose helper a CN names, or None for any other identity."""
    if cn.startswith(HELPER_CN_PREFIX) and len(cn) > len(HELPER_CN_PREFIX):
        return cn[len(HELPER_CN_PREFIX) :]
    return None


def archive_id(migration_uid: str, container: str) -> str:
    """The id of a container's checkpoint archive on the helpers ("<migration uid>-<container>"): prefixed by the
    migration uid so cleanup can go by migration."""
    return f"{migration_uid}-{container}".lower()


def volume_archive_id(migration_uid: str, volume: str) -> str:
    """The id of an emptyDir volume's archive ("<migration uid>--<volume>"): the double dash keeps it apart from
    every container's (a container name never starts with a dash), the "<uid>-" prefix keeps cleanup."""
    return f"{migration_uid}--{volume}".lower()


def migration_uid(archive_id: str) -> str | None:
    """The migration uid an archive id (or a checkpoint image's last path element) begins with, if any."""
    match = _MIGRATION_UID.match(archive_id)
    return match.group(0) if match else None


def checkpoint_image(archive_id: str) -> str:
    """The name of the checkpoint image built from one archive."""
    return f"{CHECKPOINT_IMAGE_REPOSITORY}/{archive_id}:{CHECKPOINT_IMAGE_TAG}"


def archive_id_of(image: str) -> str:
    """The archive id in a checkpoint image's name (the inverse of checkpoint_image)."""
    return image.removeprefix(f"{CHECKPOINT_IMAGE_REPOSITORY}/").removesuffix(f":{CHECKPOINT_IMAGE_TAG}")


def is_checkpoint_image(image: str) -> bool:
    return image.startswith(f"{CHECKPOINT_IMAGE_REPOSITORY}/")


def checkpoint_images_prefix(migration_uid: str) -> str:
    """What the names of a migration's checkpoint images begin with."""
    return f"{CHECKPOINT_IMAGE_REPOSITORY}/{migration_uid}-"
