"""POST /v1/send and PUT /v1/archives/{id}: an archive streamed from this node's store to the target's helper, and
taken in there."""

from __future__ import annotations

import logging
import time
from typing import Any

from nodehelper import validation
from nodehelper.errors import ArchiveTooLarge, BadRequest
from nodehelper.peers import client
from nodehelper.services.helper import Helper
from nodehelper.streams import codec
from nodehelper.streams.codec import Reader
from pmcontract import names, paths
from pmcontract.bodies import ArchiveAnswer, SendAnswer
from pmcontract.names import helper_cn

log = logging.getLogger(__name__)


def send(h: Helper, body: dict[str, Any]) -> SendAnswer:
    """Uploads an archive to the helper of ``targetNode`` at ``target``: a server that is not that node's
    helper (its certificate says so) gets nothing."""
    archive_id = validation.archive_id(validation.field(body, "id"))
    target = validation.field(body, "target")
    host, port = validation.peer_url(target)
    target_node = validation.node_name(validation.field(body, "targetNode"))
    compression = body.get("compression", "zstd")
    info = h.store.info(archive_id)
    with h.store.open(archive_id) as f, h.progress.reading(archive_id, "transfer", info.bytes, f) as read:
        result = client.send_file(
            read, info.bytes, info.sha256, (host, port), paths.path(paths.ARCHIVE, id=archive_id),
            compression=compression, ctx=h.peer_context, timeout=client.TIMEOUT, identity=helper_cn(target_node),
        )  # fmt: skip
    log.info(
        "sent archive %s to %s: %d bytes, %d on the wire (%s), %.3fs",
        archive_id,
        target,
        result["bytes"],
        result["wireBytes"],
        compression,
        result["seconds"],
    )
    return result


def receive(
    h: Helper,
    archive_id: str,
    body: Reader,
    *,
    peer: str,
    content_encoding: str,
    sha256: str | None,
    decoded_length: str | None,
    wire_length: int | None,
) -> ArchiveAnswer:
    """Everything that can refuse an upload (no grant for this peer, sha256 and size; the id exists; a size
    too large or not fitting) is checked before its body is read; the stream is bounded on the wire and
    decoded, so a body that lies about its size is cut off before it fills the disk."""
    archive_id = validation.archive_id(archive_id)
    if sha256 is None:
        raise BadRequest(f"missing {names.SHA256_HEADER} header")
    expected = validation.sha256_hex(sha256)
    size = None
    if decoded_length is not None:
        size = validation.header_byte_count(decoded_length, names.DECODED_LENGTH_HEADER)
    elif content_encoding == "identity":
        size = wire_length
    bound = codec.wire_bound(h.store.max_bytes if size is None else size, content_encoding)
    if wire_length is not None and wire_length > bound:
        raise ArchiveTooLarge(f"archive {archive_id}: a body of {wire_length} bytes, more than {bound} on the wire")
    h.grants.check_archive(peer, archive_id, expected, size)
    wire = codec.CappedReader(body, bound, f"archive {archive_id}: the body on the wire")
    started = time.monotonic()
    with h.progress.reading(archive_id, "receive", size or 0, codec.decoder(wire, content_encoding)) as read:
        info = h.store.receive(archive_id, read, expected, size)
    h.grants.drop("archive", archive_id)
    log.info(
        "received archive %s: %d bytes (%s) in %.3fs, sha256 ok",
        archive_id,
        info.bytes,
        content_encoding or "identity",
        time.monotonic() - started,
    )
    return {"bytes": info.bytes, "sha256": info.sha256}
