"""What the operator recorded of an archive, which a later request requires of it: its size and either its
sha256 or, as the operator sends it (PodMigration status publishes no sha256), HMAC-SHA256 of that sha256 under
the migration's key.

A published sha256 was a key to the checkpoint: the layer digest of a checkpoint image (a layer is reused by its
digest) and part of a pointer image's config. The keyed digest is one-way in the sha256, so nothing readable in
the cluster gives it away; the helpers check it against the sha256 they recorded as the bytes went by.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Protocol

from nodehelper import validation
from nodehelper.errors import BadRequest, ChecksumMismatch

_KEY = re.compile(r"[0-9a-f]{64}")


class _Recording(Protocol):
    def info(self, archive_id: str) -> Any: ...


def keyed(key: str, sha256: str) -> str:
    """HMAC-SHA256 under ``key`` (hex) of the hex ``sha256``: the operator computes the same."""
    return hmac.new(bytes.fromhex(key), sha256.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Recorded:
    bytes: int
    sha256: str = ""
    digest: str = ""
    key: str = ""

    def matches(self, sha256: str) -> bool:
        if self.sha256:
            return hmac.compare_digest(self.sha256, sha256)
        return hmac.compare_digest(keyed(self.key, sha256), self.digest)

    def describe(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else f"keyed digest {self.digest}"


def recorded(body: dict[str, Any]) -> Recorded:
    """ "bytes" and either "digest" with "digestKey" or "sha256", from a JSON request body."""
    size = validation.byte_count(validation.field(body, "bytes"), "bytes")
    if "digest" not in body:
        return Recorded(size, sha256=validation.sha256_hex(validation.field(body, "sha256")))
    key = validation.field(body, "digestKey")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise BadRequest("invalid digestKey: 64 lowercase hex digits expected")
    return Recorded(size, digest=validation.sha256_hex(body["digest"]), key=key)


def resolve(store: _Recording, archive_id: str, record: Recorded) -> str:
    """The archive's sha256, as this helper recorded it when the bytes went by, once it matches what the caller
    recorded (the file itself is checked against it next, by whoever reads it)."""
    if record.sha256:
        return record.sha256
    sha256: str = store.info(archive_id).sha256
    if not record.matches(sha256):
        raise ChecksumMismatch(
            f"archive {archive_id}: the sha256 recorded here does not match the {record.describe()} "
            "recorded at the checkpoint; not used"
        )
    return sha256
