"""Transfers the operator allowed: which peer helper may upload which archive (with which sha256 and size), or
fetch which image, until when. Without a grant a peer's upload or image fetch is refused (403), so a node's
identity alone cannot plant an archive on another node or read its images.

Grants live in memory: a helper that restarts forgets them, and the operator grants again when it retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodehelper import validation
from nodehelper.errors import BadRequest, Forbidden
from nodehelper.store import digests
from pmcontract.bodies import GrantAnswer

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 900
MAX_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Grant:
    peer: str
    expires: float
    archive: digests.Recorded | None = None


class Grants:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # ("archive", id) or ("image", ref) -> grant
        self._grants: dict[tuple[str, str], Grant] = {}

    def add(self, body: dict[str, Any]) -> GrantAnswer:
        """POST /v1/grants: {"peer", "expiresSeconds", and either "id" + "bytes" + "digest" + "digestKey" (or
        "sha256") or "image"}."""
        peer = validation.node_name(validation.field(body, "peer"))
        seconds = validation.timeout_seconds(body.get("expiresSeconds"), DEFAULT_SECONDS, MAX_SECONDS)
        if ("id" in body) == ("image" in body):
            raise BadRequest("a grant names either an archive (id, bytes, digest and digestKey or sha256) or an image")
        expires = self._clock() + seconds
        if "id" in body:
            key = ("archive", validation.archive_id(body["id"]))
            grant = Grant(peer, expires, digests.recorded(body))
        else:
            key = ("image", validation.image_ref(body["image"]))
            grant = Grant(peer, expires)
        with self._lock:
            self._forget_expired()
            self._grants[key] = grant
        log.info("granted %s %s to the helper of %s for %d s", key[0], key[1], peer, seconds)
        return {"kind": key[0], "name": key[1], "peer": peer, "expiresSeconds": seconds}

    def check_archive(self, peer: str, archive_id: str, sha256: str, size: int | None) -> None:
        """Raises Forbidden unless ``peer`` may upload this archive with this sha256 and (decoded) size."""
        recorded = self._grant(peer, "archive", archive_id).archive
        assert recorded is not None
        if not recorded.matches(sha256) or size != recorded.bytes:
            raise Forbidden(
                f"archive {archive_id} from {peer}: {size} bytes sha256 {sha256} is not what was granted "
                f"({recorded.bytes} bytes, {recorded.describe()})"
            )

    def check_image(self, peer: str, ref: str) -> None:
        self._grant(peer, "image", ref)

    def drop(self, kind: str, name: str) -> None:
        with self._lock:
            self._grants.pop((kind, name), None)

    def _grant(self, peer: str, kind: str, name: str) -> Grant:
        with self._lock:
            self._forget_expired()
            grant = self._grants.get((kind, name))
        if grant is None:
            raise Forbidden(f"no transfer of {kind} {name} was granted (or its grant expired)")
        if grant.peer != peer:
            raise Forbidden(f"{kind} {name} was granted to the helper of {grant.peer}, not of {peer}")
        return grant

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, g in self._grants.items() if g.expires <= now]:
            del self._grants[key]
