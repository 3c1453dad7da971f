"""What a helper tells the operator's garbage collection it holds, and how the removal of one migration leaves no
archive, partial upload, link or image of it (and nothing of another)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper.criu import criuconfig
from nodehelper.identity import tlsconfig
from nodehelper.store.archives import ArchiveStore, migration_uid

DEAD, LIVE = "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "0f1e2d3c-aaaa-bbbb-cccc-000000000002"
DATA = os.urandom(1 << 16)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def target(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningHelper]:
    (tmp_path / "runtime").mkdir()
    helper = RunningHelper(tmp_path / "target", pki["target"], runtime_dir=tmp_path / "runtime")
    helper.images.all_checkpoint_images = lambda: sorted(  # type: ignore[attr-defined]
        i for i in helper.images.images if i.startswith("localhost/podmigration-checkpoint/")
    )
    yield helper
    helper.stop()


def test_the_helper_lists_what_it_holds_and_a_dead_migration_goes_whole(
    target: RunningHelper, tmp_path: Path, pki: dict[str, Path]
) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    for uid in (DEAD, LIVE):
        target.store.receive(f"{uid}-app", io.BytesIO(DATA))
        request = {"id": f"{uid}-app", "container": "app", "sha256": SHA, "bytes": len(DATA)}
        assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx)[0] == 200
    (target.store.root / f".{DEAD}-side.x1.part").write_bytes(b"half")  # an upload under way when it died
    target.images.images.add("localhost/podmigration-checkpoint/not-a-migration:latest")

    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": [DEAD, LIVE]})
    status, body = call(target, "DELETE", f"/v1/migrations/{DEAD}", ctx=ctx)
    assert status == 200, body
    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": [LIVE]})
    assert sorted(p.name for p in target.store.root.iterdir()) == [f"{LIVE}-app.tar", f"{LIVE}-app.tar.sha256"]
    (link,) = (tmp_path / "runtime").iterdir()
    assert os.readlink(link) == str(target.store.path(f"{LIVE}-app"))


def test_only_the_operator_may_ask(target: RunningHelper, pki: dict[str, Path]) -> None:
    status, _ = call(target, "GET", "/v1/migrations", ctx=tlsconfig.client_context(pki["source"]))
    assert status == 403


def test_uids_come_from_archive_ids_only_when_they_lead_them(tmp_path: Path) -> None:
    assert migration_uid(f"{DEAD}-app") == migration_uid(f"{DEAD}--data") == DEAD
    assert migration_uid("mig1-app") is None and migration_uid(DEAD) is None
    store = ArchiveStore(tmp_path / "archives")
    (store.root / f"{DEAD}-app.tar.sha256").write_text("x")
    assert store.migration_uids() == {DEAD}


def test_uninstall_removes_only_the_managed_criu_block(
    target: RunningHelper, tmp_path: Path, pki: dict[str, Path]
) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    assert call(target, "DELETE", "/v1/criu-options", ctx=ctx)[0] == 404  # none managed here
    conf = tmp_path / "runc.conf"
    conf.write_text("log-file /tmp/criu.log\n")
    criuconfig.apply(conf, ["tcp-close"])
    target.server.criu_config = conf
    assert call(target, "DELETE", "/v1/criu-options", ctx=tlsconfig.client_context(pki["source"]))[0] == 403
    assert call(target, "DELETE", "/v1/criu-options", ctx=ctx) == (200, {"removed": True})
    assert conf.read_text() == "log-file /tmp/criu.log\n"
    assert call(target, "DELETE", "/v1/criu-options", ctx=ctx) == (200, {"removed": False})
