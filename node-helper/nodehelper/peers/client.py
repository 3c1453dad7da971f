"""Calls to another node's helper: a connection that checks which helper answers, its JSON answers, and the
streaming PUT of an archive to it."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

from nodehelper.errors import BadRequest, Busy, Conflict, HelperError, UpstreamError
from nodehelper.metrics import METRICS
from nodehelper.streams.codec import COMPRESSIONS, Reader, chunks, encoder
from pmcontract import names
from pmcontract.bodies import ArchiveAnswer, SendAnswer

#: How long a call to a peer may wait for its next bytes.
TIMEOUT = 300.0
# A peer's refusals the caller can act on (the archive is there already; come back later) keep their status.
_PASSED_ON: dict[int, type[HelperError]] = {409: Conflict, 503: Busy}


def connect(
    host: str, port: int, ctx: ssl.SSLContext, timeout: float, peer: str | None = None
) -> http.client.HTTPSConnection:
    """With ``peer`` (a CN such as system:podmigration:node-helper:<node>), connects at once and refuses a server
    whose CA-signed certificate names anyone else: an address alone does not say which node answers."""
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    if peer is not None:
        conn.connect()
        presented = names.common_name(conn.sock.getpeercert())
        if presented != peer:
            conn.close()
            raise UpstreamError(f"https://{host}:{port} is not {peer}: its certificate names {presented or 'nobody'}")
    return conn


def json_answer(resp: http.client.HTTPResponse, who: str) -> dict[str, Any]:
    """Reads a helper's JSON answer; a non-2xx answer becomes an UpstreamError carrying the peer's message."""
    raw = resp.read(1 << 20)
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"error": raw[:300].decode("utf-8", "replace")}
    if not 200 <= resp.status < 300:
        error = _PASSED_ON.get(resp.status, UpstreamError)
        raise error(f"{who} answered {resp.status}: {payload.get('error', payload)}")
    if not isinstance(payload, dict):
        raise UpstreamError(f"{who} answered with a non-object: {payload!r:.200}")
    return payload


def send_file(
    f: Reader,
    size: int,
    sha256: str,
    peer: tuple[str, int],
    path: str,
    *,
    compression: str,
    ctx: ssl.SSLContext,
    timeout: float,
    identity: str,
) -> SendAnswer:
    """PUTs the open file (or a reader of it) to the peer whose certificate names ``identity`` as a chunked body
    and checks it stored what we sent."""
    if compression not in COMPRESSIONS:
        raise BadRequest(f"invalid compression {compression!r}: expected one of {sorted(COMPRESSIONS)}")
    content_encoding = COMPRESSIONS[compression]
    wire = 0

    def body() -> Iterator[bytes]:
        nonlocal wire
        for chunk in chunks(encoder(f, content_encoding)):
            wire += len(chunk)
            yield chunk

    host, port = peer
    who = f"peer https://{host}:{port}"
    started = time.monotonic()
    try:
        conn = connect(host, port, ctx, timeout, identity)
    except OSError as exc:
        raise UpstreamError(f"sending to {who} failed: {exc}") from None
    try:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Encoding": content_encoding,
            names.SHA256_HEADER: sha256,
            names.DECODED_LENGTH_HEADER: str(size),
        }
        try:
            conn.request("PUT", path, body=body(), headers=headers, encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as exc:
            # The peer may have refused early and closed; its answer says why, if it is still readable.
            try:
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                raise UpstreamError(f"{who} closed the connection during upload: {exc}") from None
        else:
            resp = conn.getresponse()
        answer: ArchiveAnswer = json_answer(resp, who)  # type: ignore[assignment]  # the peer's JSON
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamError(f"sending to {who} failed: {exc}") from None
    finally:
        conn.close()
    seconds = time.monotonic() - started
    if answer.get("sha256") != sha256 or answer.get("bytes") != size:
        raise UpstreamError(
            f"{who} stored {answer.get('bytes')} bytes sha256 {answer.get('sha256')}, sent {size} bytes sha256 {sha256}"
        )
    METRICS.transferred(wire, seconds)
    return {"bytes": size, "wireBytes": wire, "sha256": sha256, "seconds": round(seconds, 3)}
