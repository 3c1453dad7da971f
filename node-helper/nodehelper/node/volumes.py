"""emptyDir contents moved with a pod: packed into a tar on the source, unpacked into the replacement pod's emptyDir
on the target (owners, modes, mtimes, links and empty directories kept), and the replacement released to start.
The path up to a volume's directory is the kubelet's; from the volume root on, it is the pod's, so everything below
is reached through fds without following links (beneath, volumetar)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from nodehelper import validation
from nodehelper.errors import BadRequest, Conflict, NotFound
from nodehelper.node import beneath, volumetar, volumeunpack
from nodehelper.streams.codec import Writer
from nodehelper.streams.diskspace import DiskSpace
from pmcontract.names import GATE_FILE

EMPTY_DIR = "kubernetes.io~empty-dir"


class EmptyDirs:
    """The kubelet's emptyDir directories: <pods>/<uid>/volumes/kubernetes.io~empty-dir/<volume>."""

    def __init__(self, pods_dir: Path, poll: float = 0.1) -> None:
        self.pods_dir = pods_dir
        self.poll = poll

    def path(self, pod_uid: str, volume: str) -> Path:
        uid, name = validation.pod_uid(pod_uid), validation.volume_name(volume)
        return self.pods_dir / uid / "volumes" / EMPTY_DIR / name

    def existing(self, pod_uid: str, volume: str) -> Path:
        directory = self.path(pod_uid, volume)
        if not directory.is_dir():
            raise NotFound(f"no emptyDir {volume} of pod {pod_uid} on this node ({directory})")
        return directory

    def wait_ready(self, pod_uid: str, volume: str, timeout: float) -> Path:
        """Waits until the kubelet has set the volume up: it writes plugins/kubernetes.io~empty-dir/<volume>/ready
        after the directory exists, a memory-backed tmpfs is mounted on it and its ownership is set, so nothing we
        write can end up hidden under a later mount."""
        directory = self.path(pod_uid, volume)
        ready = self.pods_dir / pod_uid / "plugins" / EMPTY_DIR / volume / "ready"
        deadline = time.monotonic() + timeout
        while not (ready.is_file() and directory.is_dir()):
            if time.monotonic() > deadline:
                raise NotFound(f"the kubelet did not set up emptyDir {volume} of pod {pod_uid} within {timeout}s")
            time.sleep(self.poll)
        return directory


def packed_size(directory: Path) -> int:
    """An upper estimate of the archive's size (see volumetar.packed_size)."""
    with beneath.volume_root(directory) as root:
        return volumetar.packed_size(root)


def pack(directory: Path, out: Writer) -> int:
    """Writes the volume's content as a tar stream (see volumetar); returns its entries."""
    with beneath.volume_root(directory) as root:
        return volumetar.pack(root, out)


def unpack(archive: Path, directory: Path, space: DiskSpace) -> volumeunpack.Unpacked:
    """Extracts the archive into the volume (see volumetar, volumeunpack), once the volume's filesystem (the node's
    disk, or memory for medium Memory) has room for the whole archive above the floor."""
    space.require(directory, archive.stat().st_size, f"unpacking {archive.name} into emptyDir {directory.name}")
    with beneath.volume_root(directory) as root:
        return volumeunpack.unpack(archive, root)


def truncations(value: object) -> dict[str, int]:
    """{"relative/path": size}: paths below the volume root (no absolute path, no `..`), sizes >= 0."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("truncate must be an object of relative path -> size")
    for rel, size in value.items():
        try:
            beneath.parts(rel)
        except BadRequest:
            raise BadRequest(f"invalid truncate path {rel!r}: expected a path relative to the volume root") from None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest(f"invalid truncate size for {rel!r}: {size!r}")
    return dict(value)


def truncate(directory: Path, sizes: dict[str, int]) -> list[str]:
    """Cuts each regular file that is larger than its size back to it (CRIU restores an open file only at the size
    it had at the dump); returns the paths cut. A path that is missing, not a regular file, or reached only through
    a symlink or a mount is left alone: the paths come from the dumped processes' open files, which name the file
    itself. The file is found with O_PATH (opening nothing, no device opened), then reopened for writing through
    its own fd, so the file truncated is the file checked."""
    done = []
    with beneath.volume_root(directory) as root:
        for rel, size in sorted(sizes.items()):
            try:
                found = beneath.open_beneath(root, rel, os.O_PATH)
            except OSError:
                continue
            try:
                st = os.fstat(found)
                if not stat.S_ISREG(st.st_mode) or st.st_size <= size:
                    continue
                fd = os.open(f"/proc/self/fd/{found}", os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.ftruncate(fd, size)
                finally:
                    os.close(fd)
                done.append(rel)
            finally:
                os.close(found)
    return done


def release(directory: Path) -> None:
    """Creates the empty file the replacement's init container waits for before the restored containers start:
    O_CREAT | O_EXCL | O_NOFOLLOW relative to the volume root's fd, so a name planted there by something in the
    pod is never followed. Idempotent for the file it made; anything else at that name is refused."""
    with beneath.volume_root(directory) as root:
        try:
            os.close(os.open(GATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | beneath.NOFOLLOW, 0o644, dir_fd=root))
        except FileExistsError:
            st = os.stat(GATE_FILE, dir_fd=root, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise Conflict(
                    f"{directory / GATE_FILE} exists and is not the file the helper makes: something "
                    "in the pod put it there; the pod is not released"
                ) from None
