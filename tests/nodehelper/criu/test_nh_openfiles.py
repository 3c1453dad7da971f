"""Open files from a real CRIU files.img (captured on the local cluster; see nhtestlib.FILES_IMG)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from nhtestlib import FILES_IMG, build_archive

from nodehelper.criu.imagefile import ImageError
from nodehelper.criu.openfiles import parse_files_img, read_open_files


def test_real_files_img_lists_regular_files_with_the_size_criu_will_check() -> None:
    files = {f["path"]: f["size"] for f in parse_files_img(FILES_IMG)}
    # What the process wrote before the dump, and the binary and libraries it maps (st_size of the node's files).
    assert files["/mem/blob"] == 12345
    assert files["/data/empty"] == 0
    assert files["/usr/bin/python3.13"] == 6832784
    assert files["/usr/lib/x86_64-linux-gnu/libc.so.6"] == 1995216
    # CRIU records no size for a write-only O_APPEND file (a log): its offset after the 3893 bytes written stands in.
    assert files["/data/seq"] == 3893
    # Nor for /dev/null or the cwd/root directories, which have no offset either: not listed.
    assert "/dev/null" not in files and "/" not in files
    assert len(files) == 11


def test_the_list_is_capped() -> None:
    assert [f["path"] for f in parse_files_img(FILES_IMG, limit=2)] == [
        "/usr/bin/python3.13",
        "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
    ]


def test_read_from_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "cp.tar"
    build_archive(archive, None)
    assert {"path": "/mem/blob", "size": 12345} in read_open_files(archive)
    build_archive(archive, None, files_img=None)
    with pytest.raises(ImageError, match="no checkpoint/files.img"):
        read_open_files(archive)


@pytest.mark.parametrize(
    "data, message",
    [
        (FILES_IMG[:6], "too short"),
        (struct.pack("<II", 0x54564319, 0x57093306) + FILES_IMG[8:], "not the expected CRIU image"),
        (FILES_IMG[:-3], "truncated"),
    ],
)
def test_rejects_malformed_images(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_files_img(data)
