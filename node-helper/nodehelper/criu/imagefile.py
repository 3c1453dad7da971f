"""CRIU images read from inside a checkpoint archive without unpacking it: tar headers are walked (member data is
skipped), and the few protobuf messages the helper reports are decoded by hand (no protobuf dependency)."""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

from nodehelper.errors import HelperError

IMG_COMMON_MAGIC = 0x54564319
IMG_SERVICE_MAGIC = 0x55105940
WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5


class ImageError(HelperError):
    """A CRIU image is missing or unreadable; callers report it next to an otherwise successful checkpoint."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ImageError("truncated or oversized protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) of a protobuf message; nested messages and strings stay bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == WIRE_VARINT:
            value, pos = _varint(buf, pos)
        elif wire == WIRE_LEN:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire in (WIRE_FIXED64, WIRE_FIXED32):
            width = 8 if wire == WIRE_FIXED64 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise ImageError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ImageError("truncated protobuf field")
        yield number, wire, value


def entries(data: bytes, magics: tuple[int, int], what: str) -> Iterator[bytes]:
    """The protobuf entries of a CRIU image: two u32 magics, then entries of a u32 size and that many bytes."""
    if len(data) < 8:
        raise ImageError(f"{what} too short ({len(data)} bytes)")
    found = struct.unpack_from("<II", data)
    if found != magics:
        raise ImageError(f"{what} is not the expected CRIU image (magics {found[0]:#x} {found[1]:#x})")
    pos = 8
    while pos < len(data):
        if pos + 4 > len(data):
            raise ImageError(f"{what}: truncated entry size at byte {pos}")
        (size,) = struct.unpack_from("<I", data, pos)
        entry = data[pos + 4 : pos + 4 + size]
        if len(entry) != size:
            raise ImageError(f"{what}: entry at byte {pos} truncated: {len(entry)} of {size} bytes")
        pos += 4 + size
        yield entry


def archive_member(archive: Path, name: str, max_bytes: int) -> bytes:
    """The content of member `name` (with or without a leading ./) of a checkpoint archive."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == name:
                    if member.size > max_bytes:
                        raise ImageError(f"{name} is implausibly large ({member.size} bytes)")
                    f = tar.extractfile(member)
                    return f.read() if f else b""
    except tarfile.TarError as exc:
        raise ImageError(f"{archive.name} is not a readable tar archive: {exc}") from None
    raise ImageError(f"no {name} in {archive.name}")
