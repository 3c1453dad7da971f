"""Restore straight from the archive: the pointer image, the link CRI-O follows from its id to the archive, reuse,
cleanup and the sweep at start."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhcalls import call
from nhrunners import STORE, TOOLS, LayoutReader
from nhtestlib import RunningHelper

from nodehelper.identity import tlsconfig
from nodehelper.runtime import ocilayout
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.images import Images
from nodehelper.store import digests

DATA = os.urandom(1 << 20)
SHA = hashlib.sha256(DATA).hexdigest()
IMAGE = "localhost/podmigration-checkpoint/mig1-app:latest"


@pytest.fixture
def target(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningHelper]:
    (tmp_path / "runtime").mkdir()
    helper = RunningHelper(tmp_path / "target", pki["target"], runtime_dir=tmp_path / "runtime")
    yield helper
    helper.stop()


def test_the_pointer_image_id_leads_to_the_archive_until_cleanup(
    target: RunningHelper, tmp_path: Path, pki: dict[str, Path]
) -> None:
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


def test_a_keyed_digest_builds_the_pointer_and_cleanup_keeps_the_names_a_restored_pod_restarts_from(
    target: RunningHelper, tmp_path: Path, pki: dict[str, Path]
) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    target.store.receive("mig1-app", io.BytesIO(DATA))
    key = os.urandom(32).hex()
    wrong = {"id": "mig1-app", "container": "app", "digest": "0" * 64, "digestKey": key, "bytes": len(DATA)}
    assert call(target, "POST", "/v1/images/checkpoint", wrong, ctx=ctx)[0] == 422
    request = {**wrong, "digest": digests.keyed(key, SHA)}
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": IMAGE})
    target.images.remove(IMAGE)
    target.images.tag("b" * 64, IMAGE)  # what settle leaves: the name on the container's original image

    status, body = call(target, "DELETE", "/v1/migrations/mig1", ctx=ctx)
    assert status == 200 and body["deleted"] == ["mig1-app"] and target.images.image_id(IMAGE) == "b" * 64
    status, body = call(target, "DELETE", "/v1/migrations/mig1?aliases=true", ctx=ctx)
    assert status == 200 and body["deleted"] == [IMAGE] and target.images.image_id(IMAGE) is None


def test_a_link_whose_archive_was_removed_is_built_again(
    target: RunningHelper, tmp_path: Path, pki: dict[str, Path]
) -> None:
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
    labels = runner.config["config"]["Labels"]
    assert {k: v for k, v in labels.items() if k != ocilayout.NONCE_LABEL} == {
        ocilayout.ARCHIVE_LABEL: "mig1-app",
        ocilayout.SHA256_LABEL: SHA,
    }
    assert len(labels[ocilayout.NONCE_LABEL]) == 64
    assert "annotations" not in runner.manifest or not runner.manifest["annotations"], (
        "no checkpoint annotation: without its link the image must not restore anything"
    )
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


def test_no_image_id_can_be_computed_from_the_archive_id_and_digest(tmp_path: Path) -> None:
    """Issue 15 F4: a pointer image's id led a pod that named it straight to the archive. Built twice from the
    same archive id and sha256 (all anyone outside the node could know), a pointer or checkpoint image gets
    another config each time (a random nonce), so another image id."""
    archive = tmp_path / "mig1-app.tar"
    archive.write_bytes(DATA)
    configs = set()
    for n in range(2):
        for kind, layout in (
            ("pointer", ocilayout.write_pointer(tmp_path / f"p{n}", "mig1-app", SHA)),
            ("checkpoint", ocilayout.write(tmp_path / f"c{n}", archive, SHA, len(DATA), "app")),
        ):
            root = Path(layout[4:].rsplit(":", 1)[0])
            manifest = json.loads(
                (
                    root
                    / "blobs"
                    / "sha256"
                    / json.loads((root / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
                ).read_text()
            )
            configs.add((kind, manifest["config"]["digest"]))
    assert len(configs) == 4


def test_two_requests_for_one_pointer_image_build_it_once(target: RunningHelper, pki: dict[str, Path]) -> None:
    """An operator that died mid-request and the replica taking over ask for the same image at once: the second
    waits for the first and keeps its image, instead of copying in a second one under the name and leaving the
    first, nameless, where cleanup (by name) never finds it."""
    ctx = tlsconfig.client_context(pki["node"])
    target.store.receive("mig1-app", io.BytesIO(DATA))
    request = {"id": "mig1-app", "container": "app", "sha256": SHA, "bytes": len(DATA)}
    build = target.images.build_pointer_image

    def slow_copy(*args: object) -> str:
        time.sleep(0.3)  # skopeo copying the layout into the storage
        return build(*args)  # type: ignore[arg-type]

    target.images.build_pointer_image = slow_copy  # type: ignore[method-assign]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx), range(2)))
    assert sorted(answers, key=lambda answer: len(answer[1])) == [
        (200, {"image": IMAGE}),
        (200, {"image": IMAGE, "reused": True}),
    ]
    assert target.images.built == [("(pointer)", IMAGE)] and target.images.dangling == []
