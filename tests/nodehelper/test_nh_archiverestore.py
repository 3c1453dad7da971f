"""Restore straight from the archive: the pointer image, the link CRI-O follows from its id to the archive, reuse,
cleanup and the sweep at start."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhtestlib import RunningHelper
from nodehelper import ocilayout, tlsconfig
from nodehelper.archiverestore import ArchiveLinks
from nodehelper.images import Images
from test_nh_images import STORE, TOOLS, LayoutReader
from test_nh_server import call

DATA = os.urandom(1 << 20)
SHA = hashlib.sha256(DATA).hexdigest()
IMAGE = "localhost/podmigration-checkpoint/mig1-app:latest"


@pytest.fixture
def target(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningHelper]:
    (tmp_path / "runtime").mkdir()
    helper = RunningHelper(tmp_path / "target", pki["target"], runtime_dir=tmp_path / "runtime")
    yield helper
    helper.stop()


def test_the_pointer_image_id_leads_to_the_archive_until_cleanup(target: RunningHelper, tmp_path: Path,
                                                                   pki: dict[str, Path]) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    target.store.receive("mig1-app", io.BytesIO(DATA))
    request = {"id": "mig1-app", "container": "app", "sha256": SHA, "bytes": len(DATA)}
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": IMAGE})
    link = tmp_path / "runtime" / target.images.image_id(IMAGE)
    assert os.readlink(link) == str(target.store.path("mig1-app")) and link.read_bytes() == DATA
    assert target.images.built == [("(pointer)", IMAGE)]

    # Asked again (an operator replica taking over): kept as it is, nothing built or relinked.
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": IMAGE, "reused": True})
    assert target.images.built == [("(pointer)", IMAGE)]

    status, body = call(target, "DELETE", "/v1/migrations/mig1", ctx=ctx)
    assert status == 200 and sorted(body["deleted"]) == sorted(["mig1-app", IMAGE])
    assert not link.is_symlink() and list((tmp_path / "runtime").iterdir()) == []


def test_a_link_whose_archive_was_removed_is_built_again(target: RunningHelper, tmp_path: Path,
                                                         pki: dict[str, Path]) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    target.store.receive("mig1-app", io.BytesIO(DATA))
    request = {"id": "mig1-app", "container": "app", "sha256": SHA, "bytes": len(DATA)}
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx)[0] == 200
    (tmp_path / "runtime" / target.images.image_id(IMAGE)).unlink()
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": IMAGE})
    assert target.images.removed == [IMAGE] and len(target.images.built) == 2
    assert os.readlink(tmp_path / "runtime" / target.images.image_id(IMAGE)) == str(target.store.path("mig1-app"))


def test_only_our_links_whose_archive_is_gone_are_swept(tmp_path: Path) -> None:
    archives, runtime = tmp_path / "archives", tmp_path / "runtime"
    archives.mkdir(), runtime.mkdir()
    (archives / "live.tar").write_bytes(b"x")
    gone, live, foreign, odd = "a" * 64, "b" * 64, "c" * 64, "not-an-id"
    os.symlink(archives / "gone.tar", runtime / gone)
    os.symlink(archives / "live.tar", runtime / live)
    os.symlink(tmp_path / "elsewhere" / "x.tar", runtime / foreign)  # not ours: never touched
    os.symlink(archives / "gone.tar", runtime / odd)
    assert ArchiveLinks(runtime, archives).sweep() == [gone]
    assert sorted(p.name for p in runtime.iterdir()) == sorted([live, foreign, odd])
    assert ArchiveLinks(runtime, archives).remove(foreign) is False and (runtime / foreign).is_symlink()
    with pytest.raises(ValueError, match="not an image id"):
        ArchiveLinks(runtime, archives).add("../etc/passwd", archives / "live.tar")


def test_the_pointer_image_is_empty_and_its_config_names_the_archive(tmp_path: Path) -> None:
    status = json.dumps({"status": {"id": "d" * 64, "repoTags": [IMAGE]}})
    runner = LayoutReader({"inspecti": status})
    assert Images(TOOLS, runner).build_pointer_image("mig1-app", SHA, IMAGE, tmp_path) == "d" * 64
    copy, inspect = runner.calls
    assert copy[:2] == ["skopeo", "--tmpdir"] and copy[3:5] == ["copy", "--quiet"] and copy[6] == STORE + IMAGE
    assert inspect[-4:] == ["inspecti", "-o", "json", IMAGE]
    assert runner.config["config"]["Labels"] == {ocilayout.ARCHIVE_LABEL: "mig1-app", ocilayout.SHA256_LABEL: SHA}
    assert "annotations" not in runner.manifest or not runner.manifest["annotations"], \
        "no checkpoint annotation: without its link the image must not restore anything"
    assert runner.layer_size == ocilayout.EMPTY_TAR_BYTES
    with tarfile.open(fileobj=io.BytesIO(runner.layer_bytes)) as empty:
        assert empty.getmembers() == []


def test_each_archive_has_its_own_pointer_image(tmp_path: Path) -> None:
    """The image id is what names the link, so two archives must never share one."""
    configs = set()
    for n, archive_id in enumerate(("mig1-app", "mig2-app")):
        layout = ocilayout.write_pointer(tmp_path / str(n), archive_id, SHA)
        index = json.loads((Path(layout[4:].rsplit(":", 1)[0]) / "index.json").read_text())
        configs.add(index["manifests"][0]["digest"])
    assert len(configs) == 2
