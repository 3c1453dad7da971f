"""Where the node's runtime would find CRIU (runtime/criupath.py), seen through the helper's read-only mounts."""

from __future__ import annotations

import os
from pathlib import Path

from nodehelper.config import CRIU_SEARCH_ROOT, Config
from nodehelper.runtime import criupath
from nodehelper.runtime.criupath import SearchDir

NODE_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"]


def mounts(tmp_path: Path) -> list[SearchDir]:
    """The chart's default search path, each directory "mounted" at tmp_path/<index>."""
    dirs = criupath.search_dirs(":".join(NODE_DIRS), tmp_path)
    for d in dirs:
        d.mounted.mkdir()
    return list(dirs)


def executable(path: Path, mode: int = 0o755) -> None:
    path.write_bytes(b"\x7fELF")
    path.chmod(mode)


def test_the_chart_mounts_each_directory_at_its_index() -> None:
    config = Config.from_env({"NODE_IP": "10.0.0.1", "PM_CRIU_SEARCH_PATH": ":".join(NODE_DIRS)})
    assert [(d.node_path, d.mounted) for d in config.criu_search] == [
        (node, CRIU_SEARCH_ROOT / str(i)) for i, node in enumerate(NODE_DIRS)
    ]
    assert Config.from_env({"NODE_IP": "10.0.0.1"}).criu_search == ()


def test_present_it_names_the_node_path(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    executable(dirs[2].mounted / "criu")
    assert criupath.find(dirs) == "/usr/sbin/criu"


def test_missing_everywhere_or_not_searched_is_none(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    executable(dirs[3].mounted / "criu-ns")
    assert criupath.find(dirs) is None
    assert criupath.find([]) is None
    assert criupath.find([SearchDir("/opt/criu", tmp_path / "not-mounted")]) is None


def test_the_first_directory_wins_as_on_the_runtimes_path(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    executable(dirs[1].mounted / "criu")
    executable(dirs[3].mounted / "criu")
    assert criupath.find(dirs) == "/usr/local/bin/criu"


def test_a_non_executable_file_or_a_directory_does_not_count(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    executable(dirs[0].mounted / "criu", mode=0o644)
    (dirs[1].mounted / "criu").mkdir()
    assert criupath.find(dirs) is None
    executable(dirs[3].mounted / "criu")
    assert criupath.find(dirs) == "/usr/bin/criu"


def test_a_link_to_a_file_in_the_same_directory_is_followed(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    executable(dirs[2].mounted / "criu-4.2.1")
    os.symlink("criu-4.2.1", dirs[2].mounted / "criu-4")
    os.symlink("criu-4", dirs[2].mounted / "criu")
    assert criupath.find(dirs) == "/usr/sbin/criu"


def test_a_link_leaving_its_directory_is_not_followed(tmp_path: Path) -> None:
    """Its target names a node path the helper has not mounted; resolved in the helper's own file system it could
    find the helper's binaries or another mount instead."""
    dirs = mounts(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    executable(outside / "criu")
    os.symlink(outside / "criu", dirs[0].mounted / "criu")
    os.symlink("../3/criu-real", dirs[1].mounted / "criu")
    executable(dirs[3].mounted / "criu-real")
    assert criupath.find(dirs) is None


def test_a_dangling_link_or_a_loop_does_not_count(tmp_path: Path) -> None:
    dirs = mounts(tmp_path)
    os.symlink("criu-gone", dirs[0].mounted / "criu")
    os.symlink("criu", dirs[1].mounted / "criu")
    os.symlink("criu-b", dirs[2].mounted / "criu")
    os.symlink("criu", dirs[2].mounted / "criu-b")
    assert criupath.find(dirs) is None
