"""The names settle gives a restored container's own image ("aliases", settle.py), which pod each was given for, and
when one may go.

An alias is what the kubelet creates every later instance of the restored container from, so it must stay for as
long as that pod is on this node, and no longer. The runtime cannot say which *name* a container was created from
(the kubelet passes CRI-O the image id it resolved, not the name the pod spec gives), so settle records the uid of
the pod it gave the alias for, and an alias is unused once no sandbox and no container (running or exited) of that
pod is left on the node: the kubelet keeps the newest sandbox of every pod that exists, removes them all once the
pod is deleted, and never creates one for it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

from nodehelper import validation
from nodehelper.runtime.images import archive_id_of, checkpoint_image_name
from pmcontract.names import migration_uid

log = logging.getLogger(__name__)

_TEMPORARY = ".new"


def removable(aliases: Mapping[str, str | None], pods_here: AbstractSet[str], every: bool) -> list[str]:
    """Which of `aliases` (alias -> the uid of the pod settle gave it for) to remove. With `every` all of them: the
    operator knows that pod is gone from this node (a rollback, or the pod's next move). Otherwise those whose pod
    has nothing left in `pods_here` (the uids of every sandbox and container on the node). One with no recorded pod
    (settled by a helper that kept no record) is kept: its pod may still restart from it."""
    if every:
        return sorted(aliases)
    return sorted(name for name, pod in aliases.items() if pod is not None and pod not in pods_here)


class AliasRecords:
    """One file per alias, `<dir>/<alias id>` (the alias id is the archive id, "<migration uid>-<container>"),
    holding the pod's uid; the directory is the helper's own, never one a pod can change."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root = root

    def _path(self, alias_id: str) -> Path:
        return self.root / validation.archive_id(alias_id)

    def add(self, alias_id: str, pod_uid: str) -> None:
        """Written whole or not at all (a helper stopped midway leaves only a temporary file, swept next time)."""
        path, uid = self._path(alias_id), validation.pod_uid(pod_uid)
        temporary = self.root / f".{path.name}{_TEMPORARY}"
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{uid}\n")
        os.replace(temporary, path)

    def pod_uid(self, alias_id: str) -> str | None:
        """The recorded pod uid; None when there is no record."""
        try:
            fd = os.open(self._path(alias_id), os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as f:
            return validation.pod_uid(f.read(256).strip())

    def pods(self, aliases: list[str]) -> dict[str, str | None]:
        """Alias (image name) -> the recorded pod uid, None when there is no record."""
        return {name: self.pod_uid(archive_id_of(name)) for name in aliases}

    def forget(self, migration: str, left: AbstractSet[str]) -> None:
        """Removes the migration's records whose alias is not among the image names `left` (it went now, or in
        a cleanup stopped between the image and its record)."""
        for alias_id in self.ids(migration):
            if checkpoint_image_name(alias_id) not in left:
                self.remove(alias_id)

    def _ids(self) -> set[str]:
        """The alias ids with a record or a temporary one."""
        return {path.name.removeprefix(".").removesuffix(_TEMPORARY) for path in self.root.iterdir()}

    def ids(self, migration: str) -> list[str]:
        """The alias ids of that migration with a record (or a temporary one)."""
        prefix = f"{validation.archive_id(migration)}-"
        return sorted(alias_id for alias_id in self._ids() if alias_id.startswith(prefix))

    def migration_uids(self) -> set[str]:
        return {uid for alias_id in self._ids() if (uid := migration_uid(alias_id))}

    def remove(self, alias_id: str) -> None:
        path = self._path(alias_id)
        path.unlink(missing_ok=True)
        (self.root / f".{path.name}{_TEMPORARY}").unlink(missing_ok=True)
