"""HTTP/1.1 message bodies as file-like streams: http.server does not decode chunked requests by itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import BinaryIO

from nodehelper.errors import BadRequest

_MAX_LINE = 4096


class BodyReader:
    """Reads a request body framed by Content-Length or Transfer-Encoding: chunked, never past its end."""

    def __init__(self, rfile: BinaryIO, headers: Mapping[str, str]) -> None:
        self._rfile = rfile
        encoding = (headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding and encoding != "chunked":
            raise BadRequest(f"unsupported Transfer-Encoding: {encoding}")
        self._chunked = encoding == "chunked"
        self._done = False
        #: The body's size as Content-Length declared it; None for a chunked body.
        self.length: int | None = None
        if self._chunked:
            self._left = 0
        else:
            try:
                self._left = int(headers.get("Content-Length") or 0)
            except ValueError:
                raise BadRequest("invalid Content-Length") from None
            if self._left < 0:
                raise BadRequest("invalid Content-Length")
            self.length = self._left
            self._done = self._left == 0
        self.wire_bytes = 0

    @property
    def done(self) -> bool:
        """True once the whole body was read, so the connection can be reused."""
        return self._done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self._done or size == 0:
            return b""
        if self._chunked and self._left == 0:
            self._left = self._next_chunk_size()
            if self._left == 0:
                self._skip_trailers()
                self._done = True
                return b""
        data = self._rfile.read(min(size, self._left))
        if not data:
            raise BadRequest("request body ended early")
        self._left -= len(data)
        self.wire_bytes += len(data)
        if self._left == 0:
            if self._chunked:
                if self._line() != b"":
                    raise BadRequest("malformed chunked body: missing CRLF after chunk")
            else:
                self._done = True
        return data

    def _line(self) -> bytes:
        line = self._rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise BadRequest("malformed chunked body: line too long")
        if not line.endswith(b"\n"):
            raise BadRequest("request body ended early")
        return line.rstrip(b"\r\n")

    def _next_chunk_size(self) -> int:
        line = self._line().split(b";", 1)[0].strip()
        try:
            return int(line, 16)
        except ValueError:
            raise BadRequest(f"malformed chunk size: {line[:32]!r}") from None

    def _skip_trailers(self) -> None:
        while self._line() != b"":
            pass


def write_chunked(wfile: BinaryIO, chunks: Iterable[bytes]) -> int:
    """Writes chunks with chunked framing and the final zero chunk; returns the payload bytes written."""
    total = 0
    for chunk in chunks:
        if chunk:
            wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            total += len(chunk)
    wfile.write(b"0\r\n\r\n")
    wfile.flush()
    return total
