"""The emptyDir tar stream, read and written as root in a directory the pod can change while we work (a container
the freeze does not hold, on the source; an ephemeral container of the replacement, on the target). Every entry is
reached from the volume root's fd one component at a time with O_NOFOLLOW (or openat2 RESOLVE_NO_SYMLINKS), every
attribute is set on an fd (or with AT_SYMLINK_NOFOLLOW on a link itself), so a link swapped in anywhere makes the
copy fail instead of leading it out of the volume. tarfile only formats and parses the stream: it never touches
the volume (no `add`, no `extractall`).

What travels: directories, regular files (content and metadata from the same open fd), symlinks as links (never
followed, pointing anywhere), hard links between files of the volume, fifos. Sockets are skipped (a restored
process recreates its own). Device nodes are refused on both sides: the helper would create them as root. The
setuid and setgid bits of non-directories are stripped on unpack (and reported): the helper never creates a file
that grants privilege; a directory's setgid bit (fsGroup's inheritance) is kept."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from nodehelper.errors import BadRequest, Conflict
from nodehelper.node import beneath
from nodehelper.streams.codec import Writer


class VolumeChanged(Conflict):
    """The volume changed under the copy: only a process of the pod can do that, so the copy is not what the
    checkpointed processes saw (source), or something in the replacement is interfering (target)."""


def changed(what: str, rel: str, detail: object) -> VolumeChanged:
    return VolumeChanged(
        f"emptyDir entry {rel!r} changed while it was {what} ({detail}): a process of the pod "
        "is running; the copy is abandoned"
    )


def refuse_device(rel: str, mode: int) -> None:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise BadRequest(
            f"emptyDir entry {rel!r} is a device node: the helper does not copy device nodes (it would "
            "create them as root on the target)"
        )


@dataclass(frozen=True)
class Entry:
    rel: str
    parent: int  # fd of the directory holding it, valid while the walk is at this entry
    name: str
    st: os.stat_result


def _open_same(parent: int, entry_rel: str, name: str, flags: int, expected: os.stat_result) -> int:
    """Opens `name` below `parent` without following it and checks it is still the inode listed."""
    try:
        fd = os.open(name, flags | beneath.NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    except OSError as exc:
        raise changed("read", entry_rel, exc.strerror) from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(fd)
        raise changed("read", entry_rel, "another file took its name")
    return fd


def entries(root: int) -> Iterator[Entry]:
    """Every entry below the root, names sorted, each directory before its content (tar order). A directory's
    stat is its open fd's; a mount point below the root is refused."""
    device = os.fstat(root).st_dev

    def walk(fd: int, prefix: str) -> Iterator[Entry]:
        for name in sorted(os.listdir(fd)):
            rel = prefix + name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                raise changed("read", rel, exc.strerror) from None
            if not stat.S_ISDIR(st.st_mode):
                yield Entry(rel, fd, name, st)
                continue
            child = _open_same(fd, rel, name, beneath.DIRECTORY, st)
            try:
                if st.st_dev != device:
                    raise BadRequest(f"emptyDir entry {rel!r} is a mount point: not copied")
                yield Entry(rel, fd, name, st)
                yield from walk(child, rel + "/")
            finally:
                os.close(child)

    yield from walk(root, "")


def packed_size(root: int) -> int:
    """An upper estimate of what `pack` writes (content in 512-byte blocks, at most three header blocks per entry,
    the end of the archive), so the free space is checked before the volume is read."""
    total = tarfile.RECORDSIZE
    for entry in entries(root):
        total += 3 * tarfile.BLOCKSIZE
        if stat.S_ISREG(entry.st.st_mode):
            total += -(-entry.st.st_size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return total


class _Content:
    """Exactly `size` bytes of an open file; a file that shrank under the copy is a changed volume."""

    def __init__(self, fd: int, size: int, rel: str) -> None:
        self.file, self.left, self.rel = os.fdopen(fd, "rb"), size, rel

    def read(self, n: int) -> bytes:
        want = min(n, self.left)
        data = self.file.read(want)
        if len(data) < want:
            raise changed("read", self.rel, "it got shorter")
        self.left -= len(data)
        return data


def _header(rel: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.type, info.mode, info.mtime = kind, stat.S_IMODE(st.st_mode), st.st_mtime
    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
    return info


def pack(root: int, out: Writer) -> int:
    """Writes the volume's content as an uncompressed PAX tar stream (numeric owners only); returns its entries."""
    count = 0
    first_link: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=cast(IO[bytes], out), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # only written
        for entry in entries(root):
            mode = entry.st.st_mode
            refuse_device(entry.rel, mode)
            if stat.S_ISSOCK(mode):
                continue
            if stat.S_ISDIR(mode):
                tar.addfile(_header(entry.rel, entry.st, tarfile.DIRTYPE))
            elif stat.S_ISLNK(mode):
                info = _header(entry.rel, entry.st, tarfile.SYMTYPE)
                try:
                    info.linkname = os.readlink(entry.name, dir_fd=entry.parent)
                except OSError as exc:
                    raise changed("read", entry.rel, exc.strerror) from None
                tar.addfile(info)
            elif stat.S_ISFIFO(mode):
                tar.addfile(_header(entry.rel, entry.st, tarfile.FIFOTYPE))
            else:
                _pack_file(tar, entry, first_link)
            count += 1
    return count


def _pack_file(tar: tarfile.TarFile, entry: Entry, first_link: dict[tuple[int, int], str]) -> None:
    """A regular file: its header from the fd its content is read from; a second name of one is a hard link."""
    fd = _open_same(entry.parent, entry.rel, entry.name, os.O_RDONLY, entry.st)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise changed("read", entry.rel, "no longer a regular file")
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            if key in first_link:
                info = _header(entry.rel, st, tarfile.LNKTYPE)
                info.linkname = first_link[key]
                tar.addfile(info)
                return
            first_link[key] = entry.rel
        info = _header(entry.rel, st, tarfile.REGTYPE)
        info.size = st.st_size
        content = _Content(os.dup(fd), st.st_size, entry.rel)
        with content.file:
            tar.addfile(info, content)  # type: ignore[arg-type]  # tarfile only calls read()
    finally:
        os.close(fd)
