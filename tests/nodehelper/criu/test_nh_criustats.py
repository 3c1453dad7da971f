import struct
from pathlib import Path

import pytest
from nhtestlib import DUMP, build_archive, field_bytes, field_varint, stats_image

from nodehelper.criu.imagefile import ImageError
from nodehelper.criu.stats import parse_stats_dump, read_dump_stats


def test_parses_dump_stats_and_skips_restore_and_unknown_fields(tmp_path: Path) -> None:
    restore = field_bytes(2, field_varint(1, 9) + field_varint(3, 99))
    archive = tmp_path / "cp.tar"
    build_archive(archive, stats_image(field_bytes(1, DUMP) + restore))
    assert read_dump_stats(archive) == {
        "freezing_time": 1234,
        "frozen_time": 56789,
        "memdump_time": 300,
        "memwrite_time": 250,
        "pages_scanned": 70000,
        "pages_skipped_parent": 0,
        "pages_written": 2**33 + 5,
        "pages_lazy": 0,
    }


def test_member_with_dot_slash_prefix_is_found(tmp_path: Path) -> None:
    archive = tmp_path / "cp.tar"
    build_archive(archive, stats_image(field_bytes(1, field_varint(2, 7))), name="./stats-dump")
    assert read_dump_stats(archive) == {"frozen_time": 7}


def test_archive_without_stats_dump(tmp_path: Path) -> None:
    archive = tmp_path / "cp.tar"
    build_archive(archive, None)
    with pytest.raises(ImageError, match="no stats-dump"):
        read_dump_stats(archive)


def test_not_a_tar(tmp_path: Path) -> None:
    archive = tmp_path / "cp.tar"
    archive.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ImageError, match="not a readable tar"):
        read_dump_stats(archive)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x40\x59", "too short"),
        (struct.pack("<III", 0x55105940, 0x12345678, 0), "not the expected CRIU image"),
        (struct.pack("<III", 0x55105940, 0x57093306, 50) + b"\x0a\x02", "truncated"),
        (stats_image(field_bytes(2, b"")), "no dump statistics"),
        (stats_image(b"\x0a\x05\x08\xff\xff"), "truncated"),
    ],
)
def test_rejects_malformed_stats(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_stats_dump(data)
