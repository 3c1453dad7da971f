import io

import pytest

from nodehelper.errors import BadRequest
from nodehelper.http.body import BodyReader, write_chunked


def read_all(reader: BodyReader, size: int = 3) -> bytes:
    out = b""
    while chunk := reader.read(size):
        out += chunk
    return out


def test_chunked_with_extensions_and_trailers() -> None:
    raw = io.BytesIO(b"5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT REQUEST")
    reader = BodyReader(raw, {"Transfer-Encoding": "chunked"})
    assert read_all(reader) == b"hello world"
    assert reader.done and reader.wire_bytes == 11
    assert raw.read() == b"NEXT REQUEST"  # never reads into the next request


def test_content_length_stops_at_the_end() -> None:
    raw = io.BytesIO(b"abcdefNEXT")
    reader = BodyReader(raw, {"Content-Length": "6"})
    assert read_all(reader) == b"abcdef" and reader.done
    assert raw.read() == b"NEXT"


@pytest.mark.parametrize(
    "raw, headers",
    [
        (b"5\r\nhel", {"Transfer-Encoding": "chunked"}),
        (b"zz\r\n", {"Transfer-Encoding": "chunked"}),
        (b"5\r\nhelloXX0\r\n\r\n", {"Transfer-Encoding": "chunked"}),
        (b"abc", {"Content-Length": "10"}),
    ],
)
def test_malformed_or_truncated_bodies(raw: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        read_all(BodyReader(io.BytesIO(raw), headers))


def test_unsupported_transfer_encoding() -> None:
    with pytest.raises(BadRequest, match="gzip"):
        BodyReader(io.BytesIO(b""), {"Transfer-Encoding": "gzip"})


def test_write_chunked_round_trip() -> None:
    out = io.BytesIO()
    assert write_chunked(out, [b"ab", b"", b"cde"]) == 5
    reader = BodyReader(io.BytesIO(out.getvalue()), {"Transfer-Encoding": "chunked"})
    assert read_all(reader) == b"abcde"
