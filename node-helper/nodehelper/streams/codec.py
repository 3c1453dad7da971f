"""Byte streams as they travel: zstd or identity encoding, sha256 while writing, bounded memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, BinaryIO, Protocol, cast

import zstandard

from nodehelper.errors import ArchiveTooLarge, BadRequest
from nodehelper.streams.hashing import BackgroundSha256

CHUNK = 1 << 20
#: Level 1: on process memory it compresses as well as level 3 at twice the speed (docs/benchmarks-profile.md).
ZSTD_LEVEL = 1
# API compression names -> HTTP Content-Encoding values.
COMPRESSIONS = {"zstd": "zstd", "none": "identity"}


class Reader(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> int: ...


def _io(source: Reader) -> IO[bytes]:
    """zstandard's stubs ask for a file; it only ever calls read()."""
    return cast(IO[bytes], source)


def encoder(source: Reader, content_encoding: str) -> Reader:
    """Wraps `source` so reading it yields the wire bytes for `content_encoding`."""
    if content_encoding == "identity":
        return source
    if content_encoding == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_reader(_io(source), read_size=CHUNK, closefd=False)
    raise BadRequest(f"unsupported encoding: {content_encoding!r}")


def decoder(source: Reader, content_encoding: str | None) -> Reader:
    """Wraps a wire stream so reading it yields the original bytes; output per read stays bounded."""
    if content_encoding in (None, "", "identity"):
        return source
    if content_encoding == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(_io(source), read_size=CHUNK, closefd=False)
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


def copy_hashing(reader: Reader, out: Writer) -> tuple[int, str]:
    """Copies the stream to `out`, returning (bytes, sha256 hex) computed on the way."""
    writer = HashingWriter(out)
    copy_into(reader, writer)
    return writer.bytes, writer.sha256


def file_sha256(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(f):
        digest.update(chunk)
    return digest.hexdigest()
