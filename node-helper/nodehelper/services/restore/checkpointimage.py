"""POST /v1/images/checkpoint: what the replacement's container names so that CRI-O restores it, in one of two ways.

- From the archive (the helper has a runtime directory, see runtime/archivelinks.py): the archive must be the file
  hashed on its way in, with the checkpoint's digest (ArchiveStore.unchanged: no second pass), a pointer image is
  made, and its id is linked to the archive. CRI-O unpacks the archive
  once when it creates the container.
- From a checkpoint image: the archive becomes the image's layer (runtime/ocilayout.py); skopeo checks its digest
  while it copies it into the storage, which unpacks it; CRI-O copies it out of the mounted image again.

Either way the answer names the image, and an image asked for again that already holds this archive is kept
(reused: an operator replica taking over may ask again while a replacement is starting from it).
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from nodehelper import validation
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.images import Images, checkpoint_image_name, staged_bytes
from nodehelper.services.keyedlock import KeyedLocks
from nodehelper.services.progress import Progress
from nodehelper.store import digests
from nodehelper.store.archives import ArchiveStore
from pmcontract.bodies import CheckpointImageAnswer

log = logging.getLogger(__name__)


class CheckpointImages:
    def __init__(
        self, store: ArchiveStore, images: Images, progress: Progress, scratch_dir: Path, links: ArchiveLinks | None
    ) -> None:
        self.store = store
        self.images = images
        self.progress = progress
        self.scratch_dir = scratch_dir
        self.links = links
        #: One build of an image at a time: a request still running for an operator that died and the next
        #: replica's request for the same image would each copy an image in under its name (a fresh nonce each,
        #: so two images), leaving the first without a name and outside any cleanup, which goes by name.
        self.building = KeyedLocks()

    def build(self, body: dict[str, Any]) -> CheckpointImageAnswer:
        archive_id = validation.archive_id(validation.field(body, "id"))
        container = validation.container_name(validation.field(body, "container"))
        recorded = digests.recorded(body)
        sha256, size = digests.resolve(self.store, archive_id, recorded), recorded.bytes
        image = body.get("image") or checkpoint_image_name(archive_id)
        with self.building.hold(image):
            return self._build(archive_id, container, sha256, size, image)

    def _build(self, archive_id: str, container: str, sha256: str, size: int, image: str) -> CheckpointImageAnswer:
        started = time.monotonic()
        if self._holds(image, archive_id, sha256, size):
            log.info(
                "checkpoint image %s already holds archive %s (sha256 %s): kept, not built again",
                image,
                archive_id,
                sha256,
            )
            return {"image": image, "reused": True}
        if self.images.discard_checkpoint_image(image):
            log.info("removed existing checkpoint image %s before building it again", image)
        how = (
            self._from_archive(archive_id, sha256, size, image)
            if self.links
            else self._from_image(archive_id, container, sha256, size, image)
        )
        log.info(
            "built checkpoint image %s from archive %s (%d bytes, sha256 verified) for container %s, %s, in %.3fs",
            image,
            archive_id,
            size,
            container,
            how,
            time.monotonic() - started,
        )
        return {"image": image}

    def _holds(self, image: str, archive_id: str, sha256: str, size: int) -> bool:
        if self.links is None:
            # The size here; the digest by skopeo while it copies the archive in as the image's layer.
            self.store.check_size(archive_id, size)
            return self.images.holds_checkpoint(image, sha256)
        self.store.unchanged(archive_id, sha256, size)
        image_id = self.images.image_id(image)
        return image_id is not None and self.links.holds(image_id, self.store.path(archive_id))

    def _from_archive(self, archive_id: str, sha256: str, size: int, image: str) -> str:
        assert self.links is not None
        self._require_space(image, 0)
        image_id = self.images.build_pointer_image(archive_id, sha256, image, self.scratch_dir)
        self.links.add(image_id, self.store.path(archive_id))
        return f"restored from the archive (image id {image_id} linked to it)"

    def _from_image(self, archive_id: str, container: str, sha256: str, size: int, image: str) -> str:
        self._require_space(image, size)
        with (
            tempfile.TemporaryDirectory(dir=self.scratch_dir) as scratch,
            self.progress.measuring(archive_id, "image", size, functools.partial(staged_bytes, Path(scratch))),
        ):
            self.images.build_checkpoint_image(
                self.store.path(archive_id), container, image, sha256=sha256, size=size, scratch=Path(scratch)
            )
        return "the archive as the image's layer"

    def _require_space(self, image: str, layer: int) -> None:
        """skopeo stages the layer in scratch while the storage applies it: room for it in both, at once."""
        needs = {self.scratch_dir: layer, self.images.storage_root: layer}
        self.store.space.require_all(needs, f"checkpoint image {image}")

    def release(self, image: str) -> None:
        """Before a checkpoint image is removed: its link to the archive goes first (the archive goes next)."""
        if self.links is None:
            return
        image_id = self.images.image_id(image)
        if image_id is not None and self.links.remove(image_id):
            log.info("removed the archive link of %s", image)
