"""CRIU dump statistics read from a checkpoint archive's stats-dump, without unpacking the archive."""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .errors import HelperError

IMG_SERVICE_MAGIC = 0x55105940
STATS_MAGIC = 0x57093306
_MAX_STATS_BYTES = 1 << 16

# criu images/stats.proto, message dump_stats_entry (times in microseconds).
DUMP_STATS_FIELDS = {
    1: "freezing_time",
    2: "frozen_time",
    3: "memdump_time",
    4: "memwrite_time",
    5: "pages_scanned",
    6: "pages_skipped_parent",
    7: "pages_written",
    8: "irmap_resolve",
    9: "pages_lazy",
    10: "page_pipes",
    11: "page_pipe_bufs",
    12: "shpages_scanned",
    13: "shpages_skipped_parent",
    14: "shpages_written",
}
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN, _WIRE_FIXED32 = 0, 1, 2, 5


class StatsError(HelperError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise StatsError("truncated or oversized varint in stats-dump")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) of a protobuf message; enough for the flat stats messages."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _WIRE_VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _WIRE_LEN:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire in (_WIRE_FIXED64, _WIRE_FIXED32):
            width = 8 if wire == _WIRE_FIXED64 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise StatsError(f"unsupported protobuf wire type {wire} in stats-dump")
        if pos > len(buf):
            raise StatsError("truncated protobuf field in stats-dump")
        yield number, wire, value


def parse_stats_dump(data: bytes) -> dict[str, int]:
    """Decodes a CRIU stats-dump image: two magics, a u32 size, then a StatsEntry whose field 1 is the dump stats."""
    if len(data) < 12:
        raise StatsError(f"stats-dump too short ({len(data)} bytes)")
    magic, stats_magic, size = struct.unpack_from("<III", data)
    if (magic, stats_magic) != (IMG_SERVICE_MAGIC, STATS_MAGIC):
        raise StatsError(f"not a CRIU stats image (magics {magic:#x} {stats_magic:#x})")
    entry = data[12 : 12 + size]
    if len(entry) != size:
        raise StatsError(f"stats-dump entry truncated: {len(entry)} of {size} bytes")
    for number, _, value in _fields(entry):
        if number == 1 and isinstance(value, bytes):
            return {
                DUMP_STATS_FIELDS[n]: v
                for n, w, v in _fields(value)
                if n in DUMP_STATS_FIELDS and w == _WIRE_VARINT and isinstance(v, int)
            }
    raise StatsError("stats-dump holds no dump statistics")


def read_dump_stats(archive: Path) -> dict[str, int]:
    """Finds stats-dump by walking tar headers (member data is skipped, not read) and parses it."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == "stats-dump":
                    if member.size > _MAX_STATS_BYTES:
                        raise StatsError(f"stats-dump is implausibly large ({member.size} bytes)")
                    f = tar.extractfile(member)
                    return parse_stats_dump(f.read() if f else b"")
    except tarfile.TarError as exc:
        raise StatsError(f"{archive.name} is not a readable tar archive: {exc}") from None
    raise StatsError(f"no stats-dump in {archive.name}")
