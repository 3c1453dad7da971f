"""POST /v1/restored/settle: once CRI-O has restored a replacement's container, the name its pod spec gives (the
checkpoint image's) is made to name the container's own image, and the checkpoint (or pointer) image and its link
to the archive go.

Why: CRI-O builds a restored container's root file system from the base image the checkpoint recorded, but the
kubelet creates every later instance (after a crash, an OOM kill, a failed liveness probe) from the image the
spec names. Left as it was, that would restore the old checkpoint again (the workload's state silently rolled
back) or, once the image is removed, never start (ErrImageNeverPull). Named after the base image, a restart is an
ordinary one, fresh from it, and the checkpoint (all of the pod's memory) is gone from the node at once. The
pod's uid is recorded first, so cleanup can tell when no pod restarts from that name any more (aliases.py).
"""

from __future__ import annotations

import logging
from typing import Any

from nodehelper import validation
from nodehelper.errors import BadRequest, Conflict, NotFound
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.containers import Containers
from nodehelper.runtime.images import Images, checkpoint_image_name
from nodehelper.services.restore.aliases import AliasRecords
from pmcontract.bodies import RestoredAnswer, SettleAnswer

log = logging.getLogger(__name__)


class Settler:
    def __init__(
        self, images: Images, containers: Containers, links: ArchiveLinks | None, records: AliasRecords
    ) -> None:
        self.images = images
        self.containers = containers
        self.links = links
        self.records = records

    def settle(self, body: dict[str, Any]) -> SettleAnswer:
        """{"namespace", "pod", "migration" (uid), "images": {container: its original image}} -> which containers
        are settled (restored, their name now the original image's) and which are still waiting for CRI-O."""
        namespace = validation.namespace(validation.field(body, "namespace"))
        pod = validation.pod_name(validation.field(body, "pod"))
        uid = validation.archive_id(validation.field(body, "migration"))
        originals = validation.field(body, "images")
        if not isinstance(originals, dict) or not originals:
            raise BadRequest("images must map each container name to its original image")
        done = self.containers.restore_done(namespace, pod)
        pod_uid = self.containers.pod_uid(namespace, pod) if any(done.values()) else ""
        settled, waiting = [], []
        for container, original in sorted(originals.items()):
            alias_id = f"{uid}-{validation.container_name(container)}"
            if not done.get(container):
                waiting.append(container)
                continue
            # Recorded first: an alias whose pod is unknown is never collected (aliases.py).
            self.records.add(alias_id, pod_uid)
            self._name_original(checkpoint_image_name(alias_id), validation.image_ref(original))
            settled.append(container)
        return {"settled": settled, "waiting": waiting}

    def _name_original(self, name: str, original: str) -> None:
        """Idempotent; the checkpoint image goes before its name is given to the original, so a helper stopped
        in between leaves no nameless checkpoint image behind (the next call gives the name)."""
        original_id = self.images.image_id(original)
        if original_id is None:
            raise NotFound(f"image {original} is not on this node: {name} cannot be made to name it")
        current = self.images.image_id(name)
        if current == original_id:
            return
        if current is not None:
            if not self.images.is_ours(name):
                raise Conflict(f"{name} names image {current}, which is neither a checkpoint image nor {original}")
            if self.links is not None:
                self.links.remove(current)
            self.images.remove(current)
        self.images.tag(original_id, name)
        log.info(
            "%s now names %s (image %s); checkpoint image %s and its archive link removed",
            name,
            original,
            original_id,
            current,
        )


def restored(containers: Containers, namespace: str | None, pod: str | None) -> RestoredAnswer:
    """GET /v1/restored: which containers of the pod CRI-O restored from a checkpoint."""
    if not namespace or not pod:
        raise BadRequest("query parameters namespace and pod are required")
    return {"containers": containers.restored(namespace, pod)}
