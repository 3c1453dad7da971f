"""The free-space floor sits above the kubelet's hard eviction thresholds, and the writes into a pod's volume and
into the image storage check it before they write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nhcalls import call
from nhtestlib import RunningHelper
from nhvolumes import TARGET_UID, empty_dir, pack_and_send, unpack

from nodehelper.config import Config
from nodehelper.errors import InsufficientStorage
from nodehelper.streams import diskspace
from nodehelper.streams.diskspace import DiskSpace, Usage, floor, refusal

GIB = 1 << 30
DISK = 100 * GIB


@pytest.mark.parametrize("size", [10 * GIB, DISK, 4096 * GIB])
def test_the_default_floor_is_above_the_kubelets_default_eviction_thresholds(size: int) -> None:
    """nodefs.available<10% and imagefs.available<15%: a write the helper allows never leaves less than that."""
    config = Config.from_env({"NODE_IP": "10.0.0.1"})
    kept = floor(size, config.min_free_bytes, config.min_free_percent)
    assert kept > 0.15 * size and kept > 0.10 * size
    assert refusal(Usage(free=kept, size=size), 0, config.min_free_bytes, config.min_free_percent) == ""
    assert refusal(Usage(free=kept, size=size), 1, config.min_free_bytes, config.min_free_percent) != ""


def test_a_write_fits_only_above_the_percentage_and_the_margin() -> None:
    # 15% of 100 GiB plus 1 GiB: 16 GiB kept free.
    assert refusal(Usage(free=20 * GIB, size=DISK), 4 * GIB, GIB, 15) == ""
    why = refusal(Usage(free=20 * GIB, size=DISK), 4 * GIB + 1, GIB, 15)
    assert f"{16 * GIB} of them kept free" in why and "PM_MIN_FREE_PERCENT=15" in why and "kubelet" in why
    assert refusal(Usage(free=20 * GIB, size=DISK), 19 * GIB, GIB, 0) == ""  # percentage off: the margin only


def test_directories_on_one_filesystem_need_room_for_the_sum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint image is staged in scratch while the storage takes it: twice its size on one disk."""
    monkeypatch.setattr(diskspace, "usage", lambda directory: Usage(20 * GIB, DISK))
    (tmp_path / "scratch").mkdir()
    (tmp_path / "storage").mkdir()
    space = DiskSpace(GIB, 15)
    space.require_all({tmp_path / "scratch": 2 * GIB, tmp_path / "storage": 2 * GIB}, "image")
    with pytest.raises(InsufficientStorage, match=f"image: {6 * GIB} bytes do not fit in {tmp_path / 'scratch'}"):
        space.require_all({tmp_path / "scratch": 3 * GIB, tmp_path / "storage": 3 * GIB}, "image")


def test_an_emptydir_unpack_that_does_not_fit_is_refused_before_it_writes(
    helpers: tuple[RunningHelper, RunningHelper],
    ctx: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = helpers
    pack_and_send(source, target, ctx)
    volume = empty_dir(target, TARGET_UID, "data")
    target.store.space.min_free_percent = 15
    # The archive store's disk is roomy; the pods' volumes' disk is at the floor already.
    monkeypatch.setattr(diskspace, "usage", lambda d: Usage(16 * GIB if d == volume else 50 * GIB, DISK))
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}
    status, body = unpack(target, request, ctx)
    assert status == 507, body
    assert f"emptyDir data: {target.store.info('mig1-vol-data').bytes} bytes do not fit in {volume}" in body["error"]
    assert "PM_MIN_FREE_PERCENT" in body["error"]
    assert list(volume.iterdir()) == []
    monkeypatch.setattr(diskspace, "usage", lambda d: Usage(50 * GIB, DISK))
    assert unpack(target, request, ctx)[0] == 200


def test_an_image_copy_that_does_not_fit_the_storage_is_not_loaded(
    helpers: tuple[RunningHelper, RunningHelper],
    ctx: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = helpers
    source.images.images = {"localhost/app:dev"}
    target.images.storage_root = tmp_path
    target.store.space.min_free_percent = 15
    monkeypatch.setattr(diskspace, "usage", lambda d: Usage(16 * GIB if d == tmp_path else 50 * GIB, DISK))
    assert call(source, "POST", "/v1/grants", {"image": "localhost/app:dev", "peer": "target"}, ctx=ctx)[0] == 200
    request = {"images": ["localhost/app:dev"], "source": source.url, "sourceNode": "source"}
    status, body = call(target, "POST", "/v1/images/ensure", request, ctx=ctx)
    assert status == 507 and "loading image localhost/app:dev from" in body["error"] and str(tmp_path) in body["error"]
    assert target.images.loaded == [] and list(target.helper.scratch_dir.iterdir()) == []
