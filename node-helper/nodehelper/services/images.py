"""POST /v1/images/ensure and GET /v1/images/export: every image a restore needs copied from the source node's helper
(so the restore never needs a registry), and the export that answers such a copy."""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nodehelper import validation
from nodehelper.errors import BadRequest, NotFound, UpstreamError
from nodehelper.peers import client
from nodehelper.services.helper import Helper
from nodehelper.streams import codec
from nodehelper.streams.diskspace import BoundedWriter
from pmcontract import names, paths
from pmcontract.bodies import EnsureImagesAnswer
from pmcontract.names import helper_cn

log = logging.getLogger(__name__)


def ensure_images(h: Helper, body: dict[str, Any]) -> EnsureImagesAnswer:
    """Copies every image missing here from the source helper, so the restore never needs a registry."""
    refs = validation.field(body, "images")
    if not isinstance(refs, list):
        raise BadRequest("images must be a list of image references")
    refs = [validation.image_ref(ref) for ref in refs]
    present: list[str] = []
    missing: list[str] = []
    for ref in refs:
        (present if h.images.is_present(ref) else missing).append(ref)
    if not missing:
        return {"present": present, "copied": []}
    if not body.get("source"):
        raise BadRequest(f"images {missing} are missing on {h.node_name} and no source helper was given")
    host, port = validation.peer_url(body["source"])
    source_node = validation.node_name(validation.field(body, "sourceNode"))
    copied = []
    for ref in missing:
        started = time.monotonic()
        size = copy_image_from(h, host, port, source_node, ref)
        copied.append(ref)
        log.info("copied image %s from %s: %d bytes in %.3fs", ref, body["source"], size, time.monotonic() - started)
    return {"present": present, "copied": copied}


def copy_image_from(h: Helper, host: str, port: int, node: str, ref: str) -> int:
    who = f"peer https://{host}:{port}"
    try:
        conn = client.connect(host, port, h.peer_context, client.TIMEOUT, peer=helper_cn(node))
    except OSError as exc:
        raise UpstreamError(f"connecting to {who} failed: {exc}") from None
    try:
        conn.request("GET", f"{paths.IMAGES_EXPORT}?{paths.IMAGE_QUERY}={quote(ref, safe='')}")
        resp = conn.getresponse()
        if resp.status != 200:
            client.json_answer(resp, who)
        header = resp.getheader(names.SHA256_HEADER)
        try:
            expected = validation.sha256_hex(header or "")
        except BadRequest:
            raise UpstreamError(f"{who} sent image {ref} with no valid {names.SHA256_HEADER}: {header!r:.80}") from None
        what = f"image {ref} from {who}"
        check = functools.partial(h.store.space.require, h.scratch_dir, 0, what)
        check()
        with tempfile.TemporaryDirectory(dir=h.scratch_dir) as tmp:
            archive = Path(tmp) / "image.tar"
            with open(archive, "wb") as out:
                too_large = f"{what}: larger than PM_MAX_ARCHIVE_BYTES"
                bounded = BoundedWriter(out, h.store.max_bytes, too_large, check)
                try:
                    size, digest = codec.copy_hashing(codec.decoder(resp, resp.getheader("Content-Encoding")), bounded)
                except BadRequest as exc:  # a corrupt or unsupported stream is the peer's fault, not ours
                    raise UpstreamError(f"image {ref} from {who}: {exc}") from None
            if digest != expected:
                raise UpstreamError(f"image {ref} from {who}: sha256 {digest} does not match {expected}")
            h.store.space.require(h.images.storage_root, size, f"loading {what}")
            h.images.load(archive, ref)
        return size
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamError(f"fetching image {ref} from {who} failed: {exc}") from None
    finally:
        conn.close()


@contextlib.contextmanager
def exported_image(h: Helper, ref: str, peer: str) -> Iterator[tuple[Path, str]]:
    """Exports an image the operator granted ``peer`` to a temporary OCI archive; yields (path, sha256) and
    deletes it afterwards."""
    ref = validation.image_ref(ref)
    h.grants.check_image(peer, ref)
    if not h.images.is_present(ref):
        raise NotFound(f"image {ref} not present on {h.node_name}")
    h.store.space.require(h.scratch_dir, h.images.size(ref), f"export of image {ref}")
    with tempfile.TemporaryDirectory(dir=h.scratch_dir) as tmp:
        archive = Path(tmp) / "image.tar"
        started = time.monotonic()
        h.images.export(ref, archive)
        with open(archive, "rb") as f:
            digest = codec.file_sha256(f)
        size = archive.stat().st_size
        log.info("exported image %s: %d bytes in %.3fs", ref, size, time.monotonic() - started)
        yield archive, digest
