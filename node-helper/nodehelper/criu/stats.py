"""CRIU dump statistics read from a checkpoint archive's stats-dump."""

from __future__ import annotations

from pathlib import Path

from nodehelper.criu.imagefile import IMG_SERVICE_MAGIC, WIRE_VARINT, ImageError, archive_member, entries, fields

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


def parse_stats_dump(data: bytes) -> dict[str, int]:
    """Decodes a CRIU stats-dump image: one StatsEntry whose field 1 is the dump stats."""
    for entry in entries(data, (IMG_SERVICE_MAGIC, STATS_MAGIC), "stats-dump"):
        for number, _, value in fields(entry):
            if number == 1 and isinstance(value, bytes):
                return {
                    DUMP_STATS_FIELDS[n]: v
                    for n, w, v in fields(value)
                    if n in DUMP_STATS_FIELDS and w == WIRE_VARINT and isinstance(v, int)
                }
    raise ImageError("stats-dump holds no dump statistics")


def read_dump_stats(archive: Path) -> dict[str, int]:
    return parse_stats_dump(archive_member(archive, "stats-dump", _MAX_STATS_BYTES))
