"""Opening paths below a directory fd that a pod can change (its emptyDir) without ever following a symlink,
crossing a mount or leaving that directory: openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV where the kernel has it (5.6+; Python has no binding, so through
syscall(2)), else one openat(2) per component with O_NOFOLLOW, which refuses the same links. Names are checked
first: no absolute path, no empty, `.` or `..` component, no NUL."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nodehelper.errors import BadRequest

SYS_OPENAT2 = 437  # the same number on every architecture (the syscall table was unified before it was added)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV

#: Every open of a pod-writable path: never the link itself followed, never a controlling tty, never inherited.
NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
#: False once the kernel (or a seccomp filter) answered ENOSYS: from then on the per-component walk.
use_openat2 = True


def parts(rel: str) -> list[str]:
    """The components of a path relative to a volume root; BadRequest for anything that could leave it."""
    if not rel or "\0" in rel or rel.startswith("/"):
        raise BadRequest(f"{rel!r} is not a plain path relative to the volume root")
    names = [p for p in rel.split("/") if p]  # a trailing or doubled slash is harmless
    if not names or any(p in (".", "..") for p in names):
        raise BadRequest(f"{rel!r} is not a plain path relative to the volume root")
    return names


def openat2(dir_fd: int, rel: str, flags: int, mode: int = 0) -> int:
    """openat2(2) with RESOLVE; OSError as os.open raises it. EAGAIN (a concurrent rename somewhere on the
    system while resolving) is retried as the man page says."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE)
    path = os.fsencode(rel)
    for _ in range(100):
        fd = _libc.syscall(SYS_OPENAT2, dir_fd, path, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), rel)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), rel)


def open_beneath(dir_fd: int, rel: str, flags: int, mode: int = 0) -> int:
    """An fd for `rel` below `dir_fd`; ELOOP (or ENOTDIR, EXDEV) when a symlink or a mount is on the way."""
    global use_openat2
    names = parts(rel)
    if use_openat2:
        try:
            return openat2(dir_fd, "/".join(names), flags | os.O_NOFOLLOW, mode)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            use_openat2 = False
    return walk(dir_fd, names, flags, mode)


def walk(dir_fd: int, names: list[str], flags: int, mode: int = 0, make_dirs: bool = False) -> int:
    """One openat(2) per component with O_NOFOLLOW (every directory on the way also O_DIRECTORY), each relative
    to the fd of the one before, on the device of `dir_fd` all the way (as RESOLVE_NO_XDEV). `make_dirs` creates
    each missing component as a directory first (mkdirat(2) never follows a link either)."""
    device = os.fstat(dir_fd).st_dev
    fd = os.dup(dir_fd)
    try:
        for i, name in enumerate(names):
            if make_dirs:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            child = os.open(name, flags | NOFOLLOW if i == len(names) - 1 else DIRECTORY, mode, dir_fd=fd)
            os.close(fd)
            fd = child
            if os.fstat(fd).st_dev != device:
                raise OSError(errno.EXDEV, "a mount point below the volume root", name)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def volume_root(directory: Path) -> Iterator[int]:
    """An fd for a volume's root directory: the path up to its parent is the kubelet's (resolved as it is), the
    root's own name is opened without following a link."""
    parent = os.open(directory.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root = os.open(directory.name, DIRECTORY, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        yield root
    finally:
        os.close(root)
