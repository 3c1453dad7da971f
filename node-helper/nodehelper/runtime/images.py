"""Images in the node's container storage: checkpoint images for CRI-O restore, base image copies, cleanup."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

from nodehelper import validation
from nodehelper.errors import BadRequest, ChecksumMismatch, HelperError
from nodehelper.runtime import ocilayout
from nodehelper.runtime.commands import CommandError, Runner, Tools, run
from pmcontract import names

log = logging.getLogger(__name__)

#: How skopeo (containers/image) says a blob's content is not the digest it was listed under.
_DIGEST_MISMATCH = re.compile(r"digest did not match|digest mismatch|size mismatch", re.IGNORECASE)
#: How containers/storage says an image it listed a moment ago was removed meanwhile.
_GONE_WHILE_LISTED = re.compile(r"image not known|no such image", re.IGNORECASE)
_LIST_ATTEMPTS = 5
#: The OCI layout's directory inside a build's scratch directory; its blob is the archive itself, linked in.
_LAYOUT = "layout"


def checkpoint_image_name(archive_id: str) -> str:
    """Checkpoint images are named after their archive id, so cleanup can find them by migration uid."""
    return names.checkpoint_image(validation.archive_id(archive_id))


def archive_id_of(image: str) -> str:
    """The archive id a checkpoint image's name was made from (the inverse of checkpoint_image_name)."""
    return validation.archive_id(names.archive_id_of(image))


def staged_bytes(scratch: Path) -> int:
    """Bytes a checkpoint image build in `scratch` has copied so far: skopeo stages the layer in a file of its
    --tmpdir (and hashes it) before the storage unpacks it, so this is how far the build has read the archive; the
    unpack that follows is not counted. The layout's blob (the archive, linked in) is not counted either."""
    total = 0
    for root, dirs, files in os.walk(scratch):
        dirs[:] = [d for d in dirs if d != _LAYOUT]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed by skopeo between the listing and here
    return total


def _checkpoint_ref(image: str) -> str:
    if not names.is_checkpoint_image(image):
        raise BadRequest(
            f"checkpoint image {image!r} must be under {names.CHECKPOINT_IMAGE_REPOSITORY}/ so cleanup finds it"
        )
    return validation.image_ref(image)


class Images:
    def __init__(self, tools: Tools, runner: Runner = run) -> None:
        self.tools = tools
        self.run = runner

    def build_checkpoint_image(
        self, archive: Path, container: str, image: str, *, sha256: str, size: int, scratch: Path
    ) -> str:
        """The archive as the one layer of an OCI layout in `scratch` (linked, not copied; see ocilayout), copied
        into the node's storage by skopeo, which checks the layer against `sha256` and `size` on the way."""
        validation.container_name(container)
        ref = _checkpoint_ref(image)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            layout = ocilayout.write(Path(tmp) / _LAYOUT, archive, sha256, size, container)
            try:
                # --tmpdir: skopeo stages the layer there before storage applies it, not on the image's /var/tmp.
                self.run(self.tools.skopeo("--tmpdir", tmp, "copy", "--quiet", layout, self.tools.storage_ref(ref)))
            except CommandError as exc:
                if _DIGEST_MISMATCH.search(exc.stderr):
                    raise ChecksumMismatch(
                        f"{archive.name} on disk does not match sha256 {sha256} recorded at the checkpoint; not used: "
                        f"{exc.stderr[-500:]}"
                    ) from None
                raise
        return image

    def build_pointer_image(self, archive_id: str, sha256: str, image: str, scratch: Path) -> str:
        """The empty image labelled with the archive that a restore straight from the archive names
        (archivelinks); its image id, as CRI-O reports it to the kubelet."""
        ref = _checkpoint_ref(image)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            layout = ocilayout.write_pointer(Path(tmp) / _LAYOUT, archive_id, sha256)
            self.run(self.tools.skopeo("--tmpdir", tmp, "copy", "--quiet", layout, self.tools.storage_ref(ref)))
        image_id = self.image_id(image)
        if image_id is None:
            raise HelperError(f"pointer image {image} is not in CRI-O's storage after its copy")
        return image_id

    def _inspect(self, image: str) -> str | None:
        """CRI-O's own answer for the image (None: no such image), so it matches what the kubelet will see."""
        try:
            return self.run(self.tools.crictl("inspecti", "-o", "json", validation.image_ref(image)))
        except CommandError as exc:
            if "no such image" in exc.stderr.lower():
                return None
            raise

    def image_id(self, image: str) -> str | None:
        """The id CRI-O answers for the image (what the kubelet passes back to CRI-O when it creates a container);
        None when there is no such image."""
        answer = self._inspect(image)
        return None if answer is None else str(json.loads(answer)["status"]["id"]).removeprefix("sha256:")

    @property
    def storage_root(self) -> Path:
        """Where images are written: the node's container storage (space is checked there first)."""
        return self.tools.storage_root

    def size(self, image: str) -> int:
        """The image's size as CRI-O reports it (0 if unknown): about what an export of it writes."""
        answer = self._inspect(image)
        return int(json.loads(answer)["status"].get("size") or 0) if answer else 0

    def is_present(self, image: str) -> bool:
        """Asks CRI-O itself, so the answer matches what the kubelet will see with imagePullPolicy Never."""
        return self._inspect(image) is not None

    def export(self, image: str, dest: Path) -> None:
        self.run(
            self.tools.skopeo(
                "copy", "--quiet", self.tools.storage_ref(validation.image_ref(image)), f"oci-archive:{dest}"
            )
        )

    def load(self, source: Path, image: str) -> None:
        self.run(
            self.tools.skopeo(
                "copy", "--quiet", f"oci-archive:{source}", self.tools.storage_ref(validation.image_ref(image))
            )
        )

    def _names(self) -> set[str]:
        """Every image name in the storage. The listing reads each image it found; one removed meanwhile (another
        migration's cleanup) fails it with "image not known", so the listing is taken again."""
        for _ in range(_LIST_ATTEMPTS - 1):
            try:
                return self._listed_names()
            except CommandError as exc:
                if not _GONE_WHILE_LISTED.search(exc.stderr):
                    raise
                log.info("image listing raced with a removal (%s); listing again", exc.stderr[-200:])
        return self._listed_names()

    def _listed_names(self) -> set[str]:
        listing = json.loads(self.run(self.tools.buildah("images", "--json")) or "[]")
        return {name for entry in listing or [] for name in entry.get("names") or []}

    def all_checkpoint_images(self) -> list[str]:
        """Every checkpoint (and pointer) image on the node, of whichever migration."""
        return sorted(name for name in self._names() if names.is_checkpoint_image(name))

    def checkpoint_images(self, migration_uid: str) -> list[str]:
        prefix = names.checkpoint_images_prefix(validation.archive_id(migration_uid))
        return sorted(name for name in self._names() if name.startswith(prefix))

    def holds_checkpoint(self, image: str, sha256: str) -> bool:
        """Whether checkpoint image `image` exists with the archive of digest `sha256` as its one layer (the layer's
        diff id, which the storage computed when skopeo applied it): a build asked for again, e.g. by an operator
        replica taking over, then keeps it instead of removing an image a replacement may be starting from."""
        ref = _checkpoint_ref(image)
        if ref not in self._names():
            return False
        inspected = json.loads(self.run(self.tools.buildah("inspect", "--type", "image", ref)) or "{}")
        return ((inspected.get("OCIv1") or {}).get("rootfs") or {}).get("diff_ids") == [f"sha256:{sha256}"]

    def is_ours(self, image: str) -> bool:
        """Whether the image was built here (its config carries our nonce): a checkpoint or pointer image. A name
        of ours on any other image is the alias that makes a restored container restart from its own image."""
        ref = _checkpoint_ref(image)
        inspected = json.loads(self.run(self.tools.buildah("inspect", "--type", "image", ref)) or "{}")
        labels = ((inspected.get("OCIv1") or {}).get("config") or {}).get("Labels") or {}
        return ocilayout.NONCE_LABEL in labels

    def tag(self, image_id: str, name: str) -> None:
        """Gives image ``image_id`` the name ``name`` (taken from whichever image had it)."""
        self.run(self.tools.buildah("tag", validation.sha256_hex(image_id), _checkpoint_ref(name)))

    def discard_checkpoint_image(self, image: str) -> bool:
        """Removes a checkpoint image of that name before it is built again: a rebuild would only move the name,
        leaving the old image (process memory) untagged where cleanup, which goes by name, never finds it."""
        if _checkpoint_ref(image) not in self._names():
            return False
        self.remove(image)
        return True

    def remove(self, image: str) -> None:
        """Never forced: a restored container still using its checkpoint image must keep it."""
        self.run(self.tools.buildah("rmi", validation.image_ref(image)))
