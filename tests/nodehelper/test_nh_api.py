"""Helper (api.py) without HTTP: start-up housekeeping and how peer failures are classified."""

from __future__ import annotations

from pathlib import Path

from nodehelper.api import Helper
from nodehelper.archives import ArchiveStore


def make_helper(root: Path) -> Helper:
    return Helper(
        node_name="node",
        store=ArchiveStore(root / "archives"),
        kubelet=None,  # type: ignore[arg-type]
        freezer=None,  # type: ignore[arg-type]
        images=None,  # type: ignore[arg-type]
        containers=None,  # type: ignore[arg-type]
        peer_context=None,  # type: ignore[arg-type]
        scratch_dir=root / "tmp",
    )


def test_stale_temporary_image_archives_are_removed_at_start(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    (scratch / "tmpabc").mkdir(parents=True)
    (scratch / "tmpabc" / "image.tar").write_bytes(b"layers")
    (scratch / "stray.tar").write_bytes(b"layers")
    helper = make_helper(tmp_path)
    assert list(helper.scratch_dir.iterdir()) == []
