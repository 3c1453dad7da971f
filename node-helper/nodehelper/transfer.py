"""Streaming archive transfer between helpers: zstd or identity encoding, sha256 while writing, bounded memory."""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

import zstandard

from . import authz
from .errors import ArchiveTooLarge, BadRequest, Busy, Conflict, HelperError, UpstreamError
from .hashing import BackgroundSha256

CHUNK = 1 << 20
#: Level 1: on process memory it compresses as well as level 3 at twice the speed (docs/benchmarks-profile.md).
ZSTD_LEVEL = 1
# API compression names -> HTTP Content-Encoding values.
COMPRESSIONS = {"zstd": "zstd", "none": "identity"}
#: The archive's size before Content-Encoding, set by our sender so the receiver can bound the stream by it.
DECODED_LENGTH_HEADER = "X-Content-Length-Decoded"
# A peer's refusals the caller can act on (the archive is there already; come back later) keep their status.
_PASSED_ON: dict[int, type[HelperError]] = {409: Conflict, 503: Busy}


class Reader(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> int: ...


def encoder(source: Reader, content_encoding: str) -> Reader:
    """Wraps `source` so reading it yields the wire bytes for `content_encoding`."""
    if content_encoding == "identity":
        return source
    if content_encoding == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_reader(source, read_size=CHUNK, closefd=False)
    raise BadRequest(f"unsupported encoding: {content_encoding!r}")


def decoder(source: Reader, content_encoding: str | None) -> Reader:
    """Wraps a wire stream so reading it yields the original bytes; output per read stays bounded."""
    if content_encoding in (None, "", "identity"):
        return source
    if content_encoding == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK, closefd=False)
    raise BadRequest(f"unsupported Content-Encoding: {content_encoding!r}")


def chunks(reader: Reader, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := reader.read(size):
        yield chunk


def wire_bound(size: int, content_encoding: str) -> int:
    """The most bytes `size` bytes may take on the wire: zstd expands incompressible data a little (per its
    compressBound: under 1/256 plus one block)."""
    return size if content_encoding == "identity" else size + size // 128 + (1 << 17)


class CappedReader:
    """Reads through, failing once more than `limit` bytes came: a sender cannot stream forever."""

    def __init__(self, source: Reader, limit: int, what: str) -> None:
        self.source = source
        self.limit = limit
        self.what = what
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.bytes += len(data)
        if self.bytes > self.limit:
            raise ArchiveTooLarge(f"{self.what}: more than {self.limit} bytes")
        return data


class HashingWriter:
    """Writes through to `out`, counting the bytes and hashing them (in a thread beside the writes), so nothing has
    to be read back to hash it."""

    def __init__(self, out: Writer) -> None:
        self.out = out
        self.bytes = 0
        self._digest = BackgroundSha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.bytes += len(data)
        return self.out.write(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        """Ends the hashing thread of a stream given up on (reading sha256 ends it too)."""
        self._digest.close()


def copy_into(reader: Reader, writer: HashingWriter) -> None:
    try:
        for chunk in chunks(reader):
            writer.write(chunk)
    except zstandard.ZstdError as exc:
        raise BadRequest(f"corrupt zstd stream: {exc}") from None


def copy_hashing(reader: Reader, out: BinaryIO) -> tuple[int, str]:
    """Copies the stream to `out`, returning (bytes, sha256 hex) computed on the way."""
    writer = HashingWriter(out)
    copy_into(reader, writer)
    return writer.bytes, writer.sha256


def file_sha256(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(f):
        digest.update(chunk)
    return digest.hexdigest()


def connect(
    host: str, port: int, ctx: ssl.SSLContext, timeout: float, peer: str | None = None
) -> http.client.HTTPSConnection:
    """With ``peer`` (a CN such as system:podmigration:node-helper:<node>), connects at once and refuses a server
    whose CA-signed certificate names anyone else: an address alone does not say which node answers."""
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    if peer is not None:
        conn.connect()
        presented = authz.common_name(conn.sock.getpeercert())
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
) -> dict[str, Any]:
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
            "X-Content-Sha256": sha256,
            DECODED_LENGTH_HEADER: str(size),
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
        answer = json_answer(resp, who)
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamError(f"sending to {who} failed: {exc}") from None
    finally:
        conn.close()
    seconds = time.monotonic() - started
    if answer.get("sha256") != sha256 or answer.get("bytes") != size:
        raise UpstreamError(
            f"{who} stored {answer.get('bytes')} bytes sha256 {answer.get('sha256')}, sent {size} bytes sha256 {sha256}"
        )
    return {"bytes": size, "wireBytes": wire, "sha256": sha256, "seconds": round(seconds, 3)}
