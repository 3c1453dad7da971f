"""Unpacking an emptyDir archive into the replacement's volume over directory fds (what and why: volumetar)."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nodehelper.errors import BadRequest
from nodehelper.node import beneath
from nodehelper.node.volumetar import changed, refuse_device

_PRIVILEGE = stat.S_ISUID | stat.S_ISGID


@dataclass
class Unpacked:
    entries: int = 0
    stripped: list[str] = field(default_factory=list)  # files whose setuid/setgid bits were dropped
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # regular files made: rel -> (dev, ino)
    links: set[str] = field(default_factory=set)  # symlinks made
    dirs: list[tarfile.TarInfo] = field(default_factory=list)  # their attributes are set last


def unpack(archive: Path, root: int) -> Unpacked:
    """Extracts the archive below the root fd, keeping numeric owners, modes (see above), mtimes."""
    done = Unpacked()
    try:
        with tarfile.open(archive, "r|") as tar:
            for member in tar:
                _extract(tar, member, root, done)
                done.entries += 1
    except tarfile.TarError as exc:
        raise BadRequest(f"archive {archive.name} is not a readable tar archive: {exc}") from None
    for info in reversed(done.dirs):  # deepest first: setting a directory's mtime is the last change to it
        fd = _opened(lambda: beneath.open_beneath(root, info.name, beneath.DIRECTORY), info.name)
        try:
            _attributes(fd, info, done)
        finally:
            os.close(fd)
    return done


def _opened(opener: Callable[[], int], rel: str) -> int:
    try:
        return opener()
    except OSError as exc:
        raise changed("written", rel, exc.strerror) from None


def _directory(root: int, names: list[str], make: bool = False) -> int:
    """An fd for the directory `names` below the root (the root itself for none), created when missing if `make`
    (an archive without its directories' own entries)."""
    if not names:
        return os.dup(root)
    try:
        return beneath.open_beneath(root, "/".join(names), beneath.DIRECTORY)
    except FileNotFoundError:
        if not make:
            raise
    return beneath.walk(root, names, beneath.DIRECTORY, make_dirs=True)


def _member_path(member: tarfile.TarInfo, done: Unpacked) -> list[str]:
    try:
        names = beneath.parts(member.name)
    except BadRequest:
        raise BadRequest(f"archive member {member.name!r} is not a plain relative path") from None
    for i in range(1, len(names)):
        if "/".join(names[:i]) in done.links:
            raise BadRequest(f"archive member {member.name!r} is below a symbolic link of the archive")
    refuse_device(member.name, stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else 0)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo()):
        raise BadRequest(f"archive member {member.name!r} has an unsupported type {member.type!r}")
    return names


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: int, done: Unpacked) -> None:
    names = _member_path(member, done)
    rel, name = "/".join(names), names[-1]
    parent = _opened(lambda: _directory(root, names[:-1], make=True), rel)
    try:
        if member.isdir():
            _fresh(lambda: os.mkdir(name, 0o700, dir_fd=parent), parent, name, rel, replace=False)
            os.close(_opened(lambda: os.open(name, beneath.DIRECTORY, dir_fd=parent), rel))
            done.dirs.append(member.replace(name=rel, deep=False))
        elif member.issym():
            _fresh(lambda: os.symlink(member.linkname, name, dir_fd=parent), parent, name, rel)
            done.links.add(rel)
            try:  # AT_SYMLINK_NOFOLLOW: on the link itself, whatever now has its name
                if os.geteuid() == 0:
                    os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
                os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
            except OSError as exc:
                raise changed("written", rel, exc.strerror) from None
        elif member.islnk():
            _hard_link(member, root, parent, name, rel, done)
        elif member.isfifo():
            _fresh(lambda: os.mkfifo(name, 0o600, dir_fd=parent), parent, name, rel)
            fd = _opened(lambda: os.open(name, os.O_RDONLY | os.O_NONBLOCK | beneath.NOFOLLOW, dir_fd=parent), rel)
            try:
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    raise changed("written", rel, "not the fifo just made")
                _attributes(fd, member, done)
            finally:
                os.close(fd)
        else:
            _write_file(tar, member, parent, name, rel, done)
    finally:
        os.close(parent)


def _fresh(make: Callable[[], object], parent: int, name: str, rel: str, replace: bool = True) -> None:
    """Makes a new entry (mkdirat, symlinkat, mknodat, O_CREAT|O_EXCL: none follows a link at the name); a
    file or link already there (a resumed unpack) is removed once first (unlinkat removes the name, never what a
    link points to), a directory is kept."""
    try:
        make()
        return
    except FileExistsError:
        if not replace:
            return
    try:
        os.unlink(name, dir_fd=parent)
        make()
    except OSError as exc:
        raise changed("written", rel, exc.strerror) from None


def _write_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str, rel: str, done: Unpacked
) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | beneath.NOFOLLOW
    holder: list[int] = []
    _fresh(lambda: holder.append(os.open(name, flags, 0o600, dir_fd=parent)), parent, name, rel)
    source = tar.extractfile(member)
    with os.fdopen(holder[0], "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)
        out.flush()
        _attributes(out.fileno(), member, done)
        st = os.fstat(out.fileno())
    done.files[rel] = (st.st_dev, st.st_ino)


def _hard_link(member: tarfile.TarInfo, root: int, parent: int, name: str, rel: str, done: Unpacked) -> None:
    """linkat(2) without AT_SYMLINK_FOLLOW, only to a regular file this unpack made, checked afterwards."""
    target = member.linkname
    if target not in done.files:
        raise BadRequest(
            f"archive member {member.name!r} is a hard link outside the volume or to no file of the archive: {target!r}"
        )
    names = target.split("/")
    source = _opened(lambda: _directory(root, names[:-1]), target)
    try:
        _fresh(
            lambda: os.link(names[-1], name, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False),
            parent,
            name,
            rel,
        )
    finally:
        os.close(source)
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if (st.st_dev, st.st_ino) != done.files[target]:
        raise changed("written", rel, f"{target!r} was replaced before the link to it was made")


def _attributes(fd: int, info: tarfile.TarInfo, done: Unpacked) -> None:
    """Owner, mode, mtime set on the fd (chown first: it clears setuid bits the chmod then sets)."""
    mode = stat.S_IMODE(info.mode)
    if not info.isdir() and mode & _PRIVILEGE:
        mode &= ~_PRIVILEGE
        done.stripped.append(info.name)
    if os.geteuid() == 0:
        os.fchown(fd, info.uid, info.gid)
    os.fchmod(fd, mode)
    os.utime(fd, (info.mtime, info.mtime))
