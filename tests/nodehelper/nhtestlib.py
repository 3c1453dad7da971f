"""Builders and fakes shared by the node-helper tests (a module, not conftest, so tests can import it by name)."""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import tempfile
import threading
from pathlib import Path

from nodehelper.errors import ChecksumMismatch, HelperError
from nodehelper.http.connlimits import ConnectionLimits
from nodehelper.http.server import HelperServer
from nodehelper.identity import tlsconfig
from nodehelper.node.freezer import Freezer
from nodehelper.node.killer import Killer
from nodehelper.node.volumes import EmptyDirs
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.services.helper import Helper
from nodehelper.services.pods import PodApi
from nodehelper.services.restore.aliases import AliasRecords
from nodehelper.store.archives import ArchiveStore


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | 0) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


DUMP = (
    field_varint(1, 1234)  # freezing_time
    + field_varint(2, 56789)  # frozen_time
    + field_varint(3, 300)  # memdump_time
    + field_varint(4, 250)  # memwrite_time
    + field_varint(5, 70000)  # pages_scanned
    + field_varint(6, 0)  # pages_skipped_parent
    + field_varint(7, 2**33 + 5)  # pages_written, beyond 32 bits
    + field_varint(9, 0)  # pages_lazy
    + varint(15 << 3 | 5)
    + b"\x01\x02\x03\x04"  # unknown fixed32 field: skipped
)


def stats_image(entry: bytes) -> bytes:
    return struct.pack("<III", 0x55105940, 0x57093306, len(entry)) + entry


DATA_DIR = Path(__file__).parent / "data"
# checkpoint/files.img of a real checkpoint (CRIU 4.2.1, local cluster) of a python3 process holding open:
# /data/seq (O_WRONLY|O_APPEND, 3893 bytes), /mem/blob (O_RDWR, 12345 bytes), /data/empty (O_RDONLY, 0 bytes).
FILES_IMG = (DATA_DIR / "files.img").read_bytes()


def build_archive(
    path: Path, stats: bytes | None, name: str = "stats-dump", files_img: bytes | None = FILES_IMG
) -> None:
    with tarfile.open(path, "w") as tar:
        for member, data in [
            ("checkpoint/pages-1.img", b"\0" * 300_000),
            *([("checkpoint/files.img", files_img)] if files_img is not None else []),
            ("config.dump", b"{}"),
            *([(name, stats)] if stats is not None else []),
            ("rootfs-diff.tar", b"x" * 1000),
        ]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def image_payload(image: str) -> bytes:
    return image.encode() * 200_000


class FakeImages:
    """Stands in for buildah/skopeo: records what the helper asked for."""

    def __init__(self) -> None:
        self.images: set[str] = set()
        self.removed: list[str] = []
        self.in_use: set[str] = set()
        self.loaded: list[str] = []
        self.built: list[tuple[str, str]] = []
        self.dangling: list[str] = []  # images that lost their name to a rebuild: invisible to cleanup
        self.layers: dict[str, str] = {}  # checkpoint image -> the sha256 of its one layer
        self.aliases: dict[str, str] = {}  # a name of ours given to another image (settle) -> that image's id
        self.storage_root = Path(tempfile.gettempdir())

    def build_checkpoint_image(
        self, archive: Path, container: str, image: str, *, sha256: str, size: int, scratch: Path
    ) -> str:
        """Checks the layer against sha256 and size as skopeo does while copying it in."""
        data = archive.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise ChecksumMismatch(f"{archive.name} on disk does not match sha256 {sha256} recorded at the checkpoint")
        if image in self.images:
            self.dangling.append(image)
        self.built.append((container, image))
        self.images.add(image)
        self.layers[image] = sha256
        return image

    def build_pointer_image(self, archive_id: str, sha256: str, image: str, scratch: Path) -> str:
        if image in self.images:
            self.dangling.append(image)
        self.built.append(("(pointer)", image))
        self.images.add(image)
        self.layers[image] = sha256
        return self.image_id(image)

    def image_id(self, image: str) -> str | None:
        """Stable per image name and content (a pointer image's id: its labels name the archive; here without the
        nonce), or the id an alias was given."""
        if image not in self.images:
            return None
        if image in self.aliases:
            return self.aliases[image]
        return hashlib.sha256(f"{image}@{self.layers.get(image)}".encode()).hexdigest()

    def is_ours(self, image: str) -> bool:
        return image not in self.aliases

    def tag(self, image_id: str, name: str) -> None:
        self.images.add(name)
        self.aliases[name] = image_id

    def holds_checkpoint(self, image: str, sha256: str) -> bool:
        return image in self.images and self.layers.get(image) == sha256

    def discard_checkpoint_image(self, image: str) -> bool:
        if image not in self.images:
            return False
        self.remove(image)
        return True

    def is_present(self, image: str) -> bool:
        return image in self.images

    def size(self, image: str) -> int:
        return len(image_payload(image))

    def export(self, image: str, dest: Path) -> None:
        """The 'image archive' is the image name repeated: big enough to span chunks, checkable after transfer."""
        dest.write_bytes(image_payload(image))

    def load(self, source: Path, image: str) -> None:
        assert source.read_bytes() == image_payload(image), "loaded archive differs from the exported one"
        self.loaded.append(image)
        self.images.add(image)

    def checkpoint_images(self, migration_uid: str) -> list[str]:
        return sorted(i for i in self.images if i.startswith(f"localhost/podmigration-checkpoint/{migration_uid}-"))

    def remove(self, image: str) -> None:
        if image in self.in_use:
            raise HelperError(f"image {image} is in use by a container")
        self.images.discard(image)
        self.aliases.pop(image, None)
        self.removed.append(image)


def grant(
    receiver: RunningHelper,
    archive_id: str,
    data: bytes | None = None,
    *,
    sha256: str = "",
    size: int = 0,
    peer: str = "source",
) -> None:
    """What the operator does before a send: lets `peer`'s helper upload this archive (data, or sha256 + size)."""
    if data is not None:
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    receiver.helper.grants.add({"id": archive_id, "peer": peer, "sha256": sha256, "bytes": size})


class RunningHelper:
    """A helper serving on loopback; with `runtime_dir` (CRI-O's working directory stand-in) it restores from
    archives, else from checkpoint images."""

    def __init__(
        self,
        root: Path,
        tls_dir: Path,
        max_workers: int = 16,
        runtime_dir: Path | None = None,
        limits: ConnectionLimits = ConnectionLimits(),
    ) -> None:
        self.store = ArchiveStore(root / "archives")
        self.images = FakeImages()
        freezer = Freezer(root / "cgroup", timeout=1.0)
        self.pods_dir = root / "pods"
        self.helper = Helper(
            node_name=root.name,
            store=self.store,
            kubelet=None,  # type: ignore[arg-type]  # set by the tests that need one
            freezer=freezer,
            images=self.images,  # type: ignore[arg-type]
            containers=None,  # type: ignore[arg-type]
            peer_context=tlsconfig.client_context(tls_dir),
            scratch_dir=root / "tmp",
            alias_records=AliasRecords(root / "aliases"),
            links=ArchiveLinks(runtime_dir, root / "archives") if runtime_dir else None,
        )
        self.pods = PodApi(
            store=self.store,
            containers=None,  # type: ignore[arg-type]  # set by the tests that need one
            netcut=None,  # type: ignore[arg-type]
            killer=Killer(freezer, timeout=1.0),
            empty_dirs=EmptyDirs(self.pods_dir, poll=0.01),
            cgroup_root=root / "cgroup",
        )
        self.server = HelperServer(
            ("127.0.0.1", 0),
            tlsconfig.server_context(tls_dir),
            self.helper,
            self.pods,
            max_workers=max_workers,
            limits=limits,
        )
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
