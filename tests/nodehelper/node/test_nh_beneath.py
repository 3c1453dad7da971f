"""Resolving below a pod-writable directory: never through a symlink, whichever way the kernel offers."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodehelper.errors import BadRequest
from nodehelper.node import beneath


@pytest.fixture(params=[True, False], ids=["openat2", "per-component"])
def root(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    monkeypatch.setattr(beneath, "use_openat2", request.param)
    (tmp_path / "volume/a/b").mkdir(parents=True)
    (tmp_path / "volume/a/b/file").write_text("inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/file").write_text("outside")
    (tmp_path / "volume/a/up").symlink_to(tmp_path / "outside")
    (tmp_path / "volume/a/rel").symlink_to("b")
    (tmp_path / "volume/a/b/alias").symlink_to("file")
    fd = os.open(tmp_path / "volume", os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def read(fd: int) -> bytes:
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_plain_paths_open(root: int) -> None:
    assert read(beneath.open_beneath(root, "a/b/file", os.O_RDONLY)) == b"inside"
    assert read(beneath.open_beneath(root, "a//b/file", os.O_RDONLY)) == b"inside"


@pytest.mark.parametrize("rel", ["a/up/file", "a/rel/file", "a/b/alias", "a/up"])
def test_no_symlink_is_followed_in_the_middle_or_at_the_end(root: int, rel: str) -> None:
    with pytest.raises(OSError) as raised:
        beneath.open_beneath(root, rel, os.O_RDONLY)
    assert raised.value.errno in (errno.ELOOP, errno.ENOTDIR)


@pytest.mark.parametrize("rel", ["", "/etc/passwd", "..", "a/../../x", "a/./b", "a\0b", "/"])
def test_paths_that_could_leave_are_refused_before_any_lookup(rel: str) -> None:
    with pytest.raises(BadRequest, match="not a plain path"):
        beneath.parts(rel)


def test_a_kernel_without_openat2_falls_back_to_the_walk(root: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beneath, "use_openat2", True)

    def enosys(*_: object) -> int:
        ctypes.set_errno(errno.ENOSYS)
        return -1

    monkeypatch.setattr(beneath._libc, "syscall", enosys)
    assert read(beneath.open_beneath(root, "a/b/file", os.O_RDONLY)) == b"inside"
    assert beneath.use_openat2 is False
    with pytest.raises(OSError):
        beneath.open_beneath(root, "a/up/file", os.O_RDONLY)


def test_the_walk_makes_missing_directories_without_following_links(root: int, tmp_path: Path) -> None:
    fd = beneath.walk(root, ["a", "new", "deeper"], beneath.DIRECTORY, make_dirs=True)
    os.close(fd)
    assert os.stat("a/new/deeper", dir_fd=root).st_mode & 0o777 == 0o700
    with pytest.raises(OSError):
        beneath.walk(root, ["a", "up", "made"], beneath.DIRECTORY, make_dirs=True)
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["file"]
