"""What each endpoint does, independent of HTTP plumbing: validate, act through the modules, log one line."""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import transfer, validation
from .archiverestore import ArchiveLinks
from .archives import ArchiveStore
from .authz import helper_cn
from .checkpointimage import CheckpointImages
from .containers import Containers
from .criuimage import ImageError
from .criustats import read_dump_stats
from .errors import ArchiveTooLarge, BadRequest, HelperError, NotFound, UpstreamError
from .follow import GrowingFileHash
from .freezer import Freezer
from .grants import Grants
from .images import Images
from .kubelet import Kubelet
from .openfiles import MAX_OPEN_FILES, read_open_files
from .progress import Progress
from .transfer import Reader

log = logging.getLogger(__name__)

PEER_TIMEOUT = 300.0


class Helper:
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
        self.grants = Grants()
        self.checkpoint_images = CheckpointImages(store, images, self.progress, scratch_dir, links)
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

    def health(self) -> dict[str, Any]:
        return {"ok": True, "node": self.node_name}

    def checkpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        """Kubelet checkpoint -> archive moved into the store (kubelet's copy gone) -> CRIU stats."""
        archive_id = validation.archive_id(validation.field(body, "id"))
        namespace, pod, container = (validation.field(body, name) for name in ("namespace", "pod", "container"))
        timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
        expected = validation.byte_count(body.get("expectedBytes", 0), "expectedBytes")
        # Refused before the kubelet dumps anything: a dump nobody may keep would only be process memory to delete.
        self.store.refuse_existing(archive_id)
        generation = self.store.generation(archive_id)
        self.store.refuse_larger(archive_id, expected, "the expected checkpoint")
        self.store.require_space(archive_id, expected)
        self.store.space.require(self.kubelet.checkpoint_dir, expected, f"checkpoint {archive_id} by the kubelet")
        started, since = time.monotonic(), time.time() - 1
        written = functools.partial(self.kubelet.written_bytes, pod, namespace, container, since)
        follower = GrowingFileHash(functools.partial(self.kubelet.writing, pod, namespace, container, since))
        try:
            with self.progress.measuring(archive_id, "checkpoint", expected, written):
                kubelet_archive = self.kubelet.checkpoint(namespace, pod, container, timeout)
            seconds = time.monotonic() - started
            digest = follower.finish(kubelet_archive)  # the rest of the hash counts as taking the archive in
        finally:
            follower.close()
        try:
            info = self.store.adopt(archive_id, kubelet_archive, digest, generation)
            adopted = time.monotonic() - started - seconds
        except FileNotFoundError:
            raise HelperError(
                f"kubelet wrote {kubelet_archive.name} but it is not in {kubelet_archive.parent} "
                "(is KUBELET_CHECKPOINT_DIR the kubelet's checkpoint directory?)"
            ) from None
        result: dict[str, Any] = {
            "id": archive_id,
            "bytes": info.bytes,
            "sha256": info.sha256,
            "seconds": round(seconds, 3),
        }
        archive = self.store.path(archive_id)
        try:
            result["stats"] = read_dump_stats(archive)
        except ImageError as exc:
            result["stats"], result["statsError"] = {}, str(exc)
            log.warning("archive %s: CRIU stats unreadable: %s", archive_id, exc)
        try:
            result["openFiles"] = read_open_files(archive)
        except ImageError as exc:
            result["openFiles"], result["openFilesError"] = [], str(exc)
            log.warning("archive %s: open files unreadable: %s", archive_id, exc)
        if len(result["openFiles"]) >= MAX_OPEN_FILES:
            log.warning("archive %s: open files listed only up to %d", archive_id, MAX_OPEN_FILES)
        log.info(
            "checkpointed %s/%s/%s as archive %s: %d bytes in %.3fs (then moved in %s in %.3fs, read in "
            "%.3fs), frozen %s us, %d open files",
            namespace,
            pod,
            container,
            archive_id,
            info.bytes,
            seconds,
            "and hashed" if digest is None else "(hashed while written)",
            adopted,
            time.monotonic() - started - seconds - adopted,
            result["stats"].get("frozen_time"),
            len(result["openFiles"]),
        )
        return result

    def freeze(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = validation.pod_uid(validation.field(body, "podUID"))
        frozen = self.freezer.freeze(uid)
        log.info("froze pod %s: %d container cgroups", uid, len(frozen))
        return {"frozen": frozen}

    def thaw(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = validation.pod_uid(validation.field(body, "podUID"))
        thawed = self.freezer.thaw(uid)
        log.info("thawed pod %s: %d container cgroups", uid, len(thawed))
        return {"frozen": [], "thawed": thawed}

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Uploads an archive to the helper of ``targetNode`` at ``target``: a server that is not that node's
        helper (its certificate says so) gets nothing."""
        archive_id = validation.archive_id(validation.field(body, "id"))
        target = validation.field(body, "target")
        host, port = validation.peer_url(target)
        target_node = validation.node_name(validation.field(body, "targetNode"))
        compression = body.get("compression", "zstd")
        info = self.store.info(archive_id)
        with self.store.open(archive_id) as f, self.progress.reading(archive_id, "transfer", info.bytes, f) as read:
            result = transfer.send_file(
                read, info.bytes, info.sha256, (host, port), f"/v1/archives/{archive_id}",
                compression=compression, ctx=self.peer_context, timeout=PEER_TIMEOUT, identity=helper_cn(target_node),
            )  # fmt: skip
        log.info(
            "sent archive %s to %s: %d bytes, %d on the wire (%s), %.3fs",
            archive_id,
            target,
            result["bytes"],
            result["wireBytes"],
            compression,
            result["seconds"],
        )
        return result

    def receive(
        self,
        archive_id: str,
        body: Reader,
        *,
        peer: str,
        content_encoding: str,
        sha256: str | None,
        decoded_length: str | None,
        wire_length: int | None,
    ) -> dict[str, Any]:
        """Everything that can refuse an upload (no grant for this peer, sha256 and size; the id exists; a size
        too large or not fitting) is checked before its body is read; the stream is bounded on the wire and
        decoded, so a body that lies about its size is cut off before it fills the disk."""
        archive_id = validation.archive_id(archive_id)
        if sha256 is None:
            raise BadRequest("missing X-Content-Sha256 header")
        expected = validation.sha256_hex(sha256)
        size = None
        if decoded_length is not None:
            size = validation.header_byte_count(decoded_length, transfer.DECODED_LENGTH_HEADER)
        elif content_encoding == "identity":
            size = wire_length
        bound = transfer.wire_bound(self.store.max_bytes if size is None else size, content_encoding)
        if wire_length is not None and wire_length > bound:
            raise ArchiveTooLarge(f"archive {archive_id}: a body of {wire_length} bytes, more than {bound} on the wire")
        self.grants.check_archive(peer, archive_id, expected, size)
        wire = transfer.CappedReader(body, bound, f"archive {archive_id}: the body on the wire")
        started = time.monotonic()
        with self.progress.reading(archive_id, "receive", size or 0, transfer.decoder(wire, content_encoding)) as read:
            info = self.store.receive(archive_id, read, expected, size)
        self.grants.drop("archive", archive_id)
        log.info(
            "received archive %s: %d bytes (%s) in %.3fs, sha256 ok",
            archive_id,
            info.bytes,
            content_encoding or "identity",
            time.monotonic() - started,
        )
        return {"bytes": info.bytes, "sha256": info.sha256}

    def ensure_images(self, body: dict[str, Any]) -> dict[str, Any]:
        """Copies every image missing here from the source helper, so the restore never needs a registry."""
        refs = validation.field(body, "images")
        if not isinstance(refs, list):
            raise BadRequest("images must be a list of image references")
        refs = [validation.image_ref(ref) for ref in refs]
        present, missing = [], []
        for ref in refs:
            (present if self.images.is_present(ref) else missing).append(ref)
        if not missing:
            return {"present": present, "copied": []}
        if not body.get("source"):
            raise BadRequest(f"images {missing} are missing on {self.node_name} and no source helper was given")
        host, port = validation.peer_url(body["source"])
        source_node = validation.node_name(validation.field(body, "sourceNode"))
        copied = []
        for ref in missing:
            started = time.monotonic()
            size = self._copy_image_from(host, port, source_node, ref)
            copied.append(ref)
            log.info(
                "copied image %s from %s: %d bytes in %.3fs", ref, body["source"], size, time.monotonic() - started
            )
        return {"present": present, "copied": copied}

    def _copy_image_from(self, host: str, port: int, node: str, ref: str) -> int:
        who = f"peer https://{host}:{port}"
        try:
            conn = transfer.connect(host, port, self.peer_context, PEER_TIMEOUT, peer=helper_cn(node))
        except OSError as exc:
            raise UpstreamError(f"connecting to {who} failed: {exc}") from None
        try:
            conn.request("GET", f"/v1/images/export?image={quote(ref, safe='')}")
            resp = conn.getresponse()
            if resp.status != 200:
                transfer.json_answer(resp, who)
            header = resp.getheader("X-Content-Sha256")
            try:
                expected = validation.sha256_hex(header or "")
            except BadRequest:
                raise UpstreamError(f"{who} sent image {ref} with no valid X-Content-Sha256: {header!r:.80}") from None
            with tempfile.TemporaryDirectory(dir=self.scratch_dir) as tmp:
                archive = Path(tmp) / "image.tar"
                with open(archive, "wb") as out:
                    try:
                        size, digest = transfer.copy_hashing(
                            transfer.decoder(resp, resp.getheader("Content-Encoding")), out
                        )
                    except BadRequest as exc:  # a corrupt or unsupported stream is the peer's fault, not ours
                        raise UpstreamError(f"image {ref} from {who}: {exc}") from None
                if digest != expected:
                    raise UpstreamError(f"image {ref} from {who}: sha256 {digest} does not match {expected}")
                self.images.load(archive, ref)
            return size
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamError(f"fetching image {ref} from {who} failed: {exc}") from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def exported_image(self, ref: str, peer: str) -> Iterator[tuple[Path, str]]:
        """Exports an image the operator granted ``peer`` to a temporary OCI archive; yields (path, sha256) and
        deletes it afterwards."""
        ref = validation.image_ref(ref)
        self.grants.check_image(peer, ref)
        if not self.images.is_present(ref):
            raise NotFound(f"image {ref} not present on {self.node_name}")
        with tempfile.TemporaryDirectory(dir=self.scratch_dir) as tmp:
            archive = Path(tmp) / "image.tar"
            started = time.monotonic()
            self.images.export(ref, archive)
            with open(archive, "rb") as f:
                digest = transfer.file_sha256(f)
            size = archive.stat().st_size
            log.info("exported image %s: %d bytes in %.3fs", ref, size, time.monotonic() - started)
            yield archive, digest

    def restored(self, namespace: str | None, pod: str | None) -> dict[str, Any]:
        if not namespace or not pod:
            raise BadRequest("query parameters namespace and pod are required")
        return {"containers": self.containers.restored(namespace, pod)}

    def delete_migration(self, migration_uid: str) -> dict[str, Any]:
        """Removes the migration's archives and checkpoint images; an image still used by a container is kept."""
        uid = validation.archive_id(migration_uid)
        deleted = self.store.delete_migration(uid)
        kept = []
        for image in self.images.checkpoint_images(uid):
            try:
                self.checkpoint_images.release(image)
                self.images.remove(image)
                deleted.append(image)
            except HelperError as exc:
                kept.append({"image": image, "reason": str(exc)})
        log.info("cleaned up migration %s: deleted %s, kept %s", uid, deleted, [k["image"] for k in kept])
        return {"deleted": deleted, "kept": kept}
