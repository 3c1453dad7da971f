"""After a restore: the checkpoint image's name is given to the container's own image (so a restart is fresh), the
checkpoint image and its archive link go at once, and the keyed digest the operator records instead of a sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from nhtestlib import FakeImages

from nodehelper.errors import BadRequest, ChecksumMismatch, Conflict
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.images import checkpoint_image_name
from nodehelper.services.restore.aliases import AliasRecords
from nodehelper.services.restore.settle import Settler
from nodehelper.store import digests
from nodehelper.store.grants import Grants

ORIGINAL = "localhost/pm-counter:e2e"
ORIGINAL_ID = "b" * 64
NAME = checkpoint_image_name("mig1-app")


POD_UID = "5b0c1d2e-0000-4000-8000-00000000abcd"


class FakeContainers:
    def __init__(self, done: dict[str, bool]) -> None:
        self.done = done

    def restore_done(self, namespace: str, pod: str) -> dict[str, bool]:
        return self.done

    def pod_uid(self, namespace: str, pod: str) -> str:
        return POD_UID


@pytest.fixture
def images() -> FakeImages:
    images = FakeImages()
    images.tag(ORIGINAL_ID, ORIGINAL)
    images.build_pointer_image("mig1-app", "a" * 64, NAME, Path("/nonexistent"))
    return images


def settle(settler: Settler, containers: dict[str, str] | None = None) -> dict:
    return settler.settle(
        {"namespace": "default", "pod": "web-1a2b3", "migration": "mig1", "images": containers or {"app": ORIGINAL}}
    )


def test_a_restored_container_settles_its_name_on_its_own_image(images: FakeImages, tmp_path: Path) -> None:
    runtime, archives = tmp_path / "runtime", tmp_path / "archives"
    runtime.mkdir(), archives.mkdir()
    (archives / "mig1-app.tar").write_bytes(b"memory")
    links = ArchiveLinks(runtime, archives)
    pointer = images.image_id(NAME)
    assert pointer is not None
    links.add(pointer, archives / "mig1-app.tar")
    records = AliasRecords(tmp_path / "aliases")
    settler = Settler(images, FakeContainers({"app": True}), links, records)  # type: ignore[arg-type]

    assert settle(settler) == {"settled": ["app"], "waiting": []}
    assert images.image_id(NAME) == ORIGINAL_ID, "the kubelet's next create of the container is an ordinary one"
    assert records.pod_uid("mig1-app") == POD_UID, "the pod the alias is for, so cleanup knows when it is unused"
    assert pointer in images.removed and not (runtime / pointer).is_symlink(), "checkpoint and link gone at once"
    removed = list(images.removed)
    assert settle(settler) == {"settled": ["app"], "waiting": []} and images.removed == removed, "idempotent"


def test_a_container_crio_has_not_restored_yet_waits_and_keeps_its_checkpoint(
    images: FakeImages, tmp_path: Path
) -> None:
    pointer = images.image_id(NAME)
    records = AliasRecords(tmp_path / "aliases")
    settler = Settler(images, FakeContainers({"app": False}), None, records)  # type: ignore[arg-type]
    assert settle(settler) == {"settled": [], "waiting": ["app"]}
    assert images.image_id(NAME) == pointer and images.removed == [] and records.ids("mig1") == []


def test_a_name_on_an_image_that_is_not_ours_is_left_alone(images: FakeImages, tmp_path: Path) -> None:
    images.remove(NAME)
    images.tag("c" * 64, NAME)  # someone else's image under our name: neither ours nor the original
    settler = Settler(
        images,
        FakeContainers({"app": True}),
        None,  # type: ignore[arg-type]
        AliasRecords(tmp_path / "aliases"),
    )
    with pytest.raises(Conflict, match="neither a checkpoint image nor"):
        settle(settler)
    with pytest.raises(BadRequest):
        settle(settler, {"../x": ORIGINAL})


def test_the_keyed_digest_stands_for_the_sha256_without_giving_it_away() -> None:
    data = os.urandom(1000)
    sha, key = hashlib.sha256(data).hexdigest(), os.urandom(32).hex()
    digest = digests.keyed(key, sha)
    assert digest != sha and digests.keyed(os.urandom(32).hex(), sha) != digest
    record = digests.recorded({"bytes": 1000, "digest": digest, "digestKey": key})
    assert record.matches(sha) and not record.matches("0" * 64)

    class Store:
        def info(self, archive_id: str):  # the sha256 this helper recorded as the bytes went by
            return type("Info", (), {"sha256": sha})

    assert digests.resolve(Store(), "mig1-app", record) == sha
    with pytest.raises(ChecksumMismatch):
        digests.resolve(Store(), "mig1-app", digests.recorded({"bytes": 1000, "digest": "0" * 64, "digestKey": key}))
    with pytest.raises(BadRequest, match="digestKey"):
        digests.recorded({"bytes": 1, "digest": digest, "digestKey": "short"})

    grants = Grants()
    grants.add({"id": "mig1-app", "peer": "worker-1", "bytes": 1000, "digest": digest, "digestKey": key})
    grants.check_archive("worker-1", "mig1-app", sha, 1000)
    with pytest.raises(Exception, match="not what was granted"):
        grants.check_archive("worker-1", "mig1-app", "1" * 64, 1000)
