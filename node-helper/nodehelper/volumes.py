"""emptyDir contents moved with a pod: packed into a tar on the source, unpacked into the replacement pod's emptyDir
on the target (owners, modes, mtimes, links and empty directories kept), and the replacement released to start."""

from __future__ import annotations

import os
import stat
import tarfile
import time
from pathlib import Path

from . import validation
from .errors import BadRequest, NotFound
from .transfer import Writer

EMPTY_DIR = "kubernetes.io~empty-dir"
RELEASE_FILE = "done"


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
    """An upper estimate of what `pack` writes (content in 512-byte blocks, at most three header blocks per entry,
    the end of the archive), so the free space is checked before the volume is read."""
    total = tarfile.RECORDSIZE
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            total += 3 * tarfile.BLOCKSIZE
            if stat.S_ISREG(st.st_mode):
                total += -(-st.st_size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return total


def pack(directory: Path, out: Writer) -> int:
    """Writes the directory's content as an uncompressed tar stream (numeric owners only); returns its entries.
    Sockets are skipped (tarfile cannot store them; a restored process recreates its own)."""
    entries = 0

    def numeric(member: tarfile.TarInfo) -> tarfile.TarInfo:
        nonlocal entries
        entries += 1
        member.uname = member.gname = ""
        return member

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name, recursive=True, filter=numeric)
    return entries


def _inside(directory: str, path: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's "tar" filter (nothing written outside `dest`, also not through a symlink extracted before) plus:
    no absolute name, no `..`, no hard link outside; unlike that filter, modes are kept as packed, and a symlink
    may point anywhere (``current -> /data/v2`` is the workload's data: it is restored as a link and never
    followed, since every later member's real path must still be inside `dest`)."""
    if os.path.isabs(member.name) or ".." in Path(member.name).parts:
        raise BadRequest(f"archive member {member.name!r} is not a plain relative path")
    if member.islnk() and not _inside(dest, os.path.normpath(os.path.join(dest, member.linkname))):
        raise BadRequest(f"archive member {member.name!r} is a hard link outside the volume: {member.linkname!r}")
    if member.issym():
        checked = tarfile.tar_filter(member.replace(linkname=".", deep=False), dest)
        return checked.replace(linkname=member.linkname, mode=member.mode, deep=False)
    return tarfile.tar_filter(member, dest).replace(mode=member.mode, deep=False)


def unpack(archive: Path, directory: Path) -> int:
    """Extracts the archive into the directory, keeping numeric owners; returns its entries."""
    dest = os.path.realpath(directory)
    try:
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(dest, numeric_owner=True, filter=_safe_member)
            for member in tar.getmembers():
                if member.issym():  # tarfile leaves a symlink's own mtime at extraction time
                    os.utime(os.path.join(dest, member.name), (member.mtime,) * 2, follow_symlinks=False)
            return len(tar.getmembers())
    except tarfile.FilterError as exc:
        raise BadRequest(f"archive {archive.name}: {exc}") from None
    except tarfile.TarError as exc:
        raise BadRequest(f"archive {archive.name} is not a readable tar archive: {exc}") from None


def truncations(value: object) -> dict[str, int]:
    """{"relative/path": size}: paths below the volume root (no absolute path, no `..`), sizes >= 0."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("truncate must be an object of relative path -> size")
    for rel, size in value.items():
        if not rel or os.path.isabs(rel) or ".." in Path(rel).parts or "\0" in rel:
            raise BadRequest(f"invalid truncate path {rel!r}: expected a path relative to the volume root")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest(f"invalid truncate size for {rel!r}: {size!r}")
    return dict(value)


def truncate(directory: Path, sizes: dict[str, int]) -> list[str]:
    """Cuts each regular file that is larger than its size back to it (CRIU restores an open file only at the size
    it had at the dump); returns the paths cut. Missing files and paths leaving the volume are left alone."""
    root = os.path.realpath(directory)
    done = []
    for rel, size in sorted(sizes.items()):
        path = os.path.realpath(os.path.join(root, rel))
        if not _inside(root, path) or not os.path.isfile(path):
            continue
        if os.stat(path).st_size > size:
            os.truncate(path, size)
            done.append(rel)
    return done


def release(directory: Path) -> None:
    """Writes the empty file the replacement's init container waits for before the restored containers start."""
    (directory / RELEASE_FILE).touch()
