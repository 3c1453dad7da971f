"""What the endpoints act through: the node's archive store, kubelet, freezer, images, containers and the client
identity toward peers, held once (the functions of checkpoint.py, transfer.py, images.py, gc.py take it); the
housekeeping of a helper that starts."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
from pathlib import Path

from nodehelper.node.freezer import Freezer
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.containers import Containers
from nodehelper.runtime.images import Images
from nodehelper.runtime.kubelet import Kubelet
from nodehelper.services.keyedlock import KeyedLocks
from nodehelper.services.progress import Progress
from nodehelper.services.restore.aliases import AliasRecords
from nodehelper.services.restore.checkpointimage import CheckpointImages
from nodehelper.services.restore.settle import Settler
from nodehelper.store.archives import ArchiveStore
from nodehelper.store.grants import Grants
from pmcontract.bodies import HealthAnswer

log = logging.getLogger(__name__)


class Helper:
    """The helper's state for the archive, checkpoint, image and cleanup endpoints; tests swap a dependency by
    assigning it."""

    def __init__(
        self,
        node_name: str,
        store: ArchiveStore,
        kubelet: Kubelet,
        freezer: Freezer,
        images: Images,
        containers: Containers,
        peer_context: ssl.SSLContext,
        scratch_dir: Path,
        alias_records: AliasRecords,
        links: ArchiveLinks | None = None,
    ) -> None:
        self.node_name = node_name
        self.store = store
        self.kubelet = kubelet
        self.freezer = freezer
        self.images = images
        self.containers = containers
        self.peer_context = peer_context
        self.scratch_dir = scratch_dir
        self.progress = Progress()
        self.dumping = KeyedLocks()
        self.grants = Grants()
        self.checkpoint_images = CheckpointImages(store, images, self.progress, scratch_dir, links)
        self.alias_records = alias_records
        self.settler = Settler(images, containers, links, alias_records)
        if links is not None:
            links.sweep()
        scratch_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(scratch_dir, 0o700)
        for stale in sorted(scratch_dir.iterdir()):
            # Temporary image archives left by a helper that stopped mid-export or mid-copy: nobody uses them.
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            log.info("removed stale temporary image archive %s", stale.name)

    def health(self) -> HealthAnswer:
        return {"ok": True, "node": self.node_name}
