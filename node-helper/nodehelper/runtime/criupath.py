"""Where the node's runtime would find CRIU, for GET /v1/node (`kubectl migrate check`).

What this relies on: runc starts CRIU by its bare name (libcontainer/criu_linux.go, ``exec.Command("criu", "swrk",
"3")``; go-criu's ``MakeCriu`` defaults to ``"criu"`` as well), so it is looked up on the PATH runc inherits from
CRI-O, a systemd service: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin unless its unit sets another. The helper
sees those node directories only through read-only mounts (chart value nodeHelper.criuSearchPath, each at
<root>/<index>) and looks in them in order, as execvp does, for an executable regular file ``criu``. It never runs a
node binary, so CRIU's version is not known here. A symbolic link (``criu -> criu-4.1``) is followed only to another
name in the same directory: a target with a slash could leave the mount.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NAME = "criu"
#: Links followed inside one directory (criu -> criu-4 -> criu-4.2.1); a longer chain counts as not found.
MAX_LINKS = 8


@dataclass(frozen=True)
class SearchDir:
    #: The directory on the node, as reported.
    node_path: str
    #: Where the helper has it mounted.
    mounted: Path


def search_dirs(path: str, root: Path) -> tuple[SearchDir, ...]:
    """The node directories of a PATH-like list, each mounted at root/<its index in the list> (the chart's mounts)."""
    return tuple(SearchDir(d, root / str(i)) for i, d in enumerate(path.split(":")) if d)


def find(dirs: Sequence[SearchDir]) -> str | None:
    """The node path of the first ``criu`` in dirs that is, or links within its directory to, an executable regular
    file; None when there is none."""
    return next((posixpath.join(d.node_path, NAME) for d in dirs if _executable_in(d.mounted)), None)


def _executable_in(directory: Path) -> bool:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        name = NAME
        for _ in range(MAX_LINKS + 1):
            try:
                mode = os.lstat(name, dir_fd=fd).st_mode
                if not stat.S_ISLNK(mode):
                    return stat.S_ISREG(mode) and bool(mode & 0o111)
                name = os.readlink(name, dir_fd=fd)
            except OSError:
                return False
            if "/" in name:  # another directory, maybe outside the mount: not followed
                return False
        return False
    finally:
        os.close(fd)
