"""Restore straight from the checkpoint archive (chart value nodeHelper.restoreFrom: archive), without a checkpoint
image holding the process memory.

CRI-O 1.36 restores a container from a checkpoint archive when the image it is asked to create the container from
names an existing file (server/container_create.go: `os.Stat(image)`), and unpacks that archive once into the
container's directory. The kubelet only passes an image it resolved: the image *id* of what the pod names. So the
replacement names a pointer image (ocilayout.write_pointer: empty, labelled with the archive) and the file CRI-O
stats is that id, relative to CRI-O's working directory: a symbolic link `<runtime dir>/<image id>` to the archive.
This skips skopeo's staging and unpacking of the whole archive into the storage and CRI-O's copy of it out of the
mounted image again (measured at 1 GiB: the image step 6.8 s -> 0.2 s; docs/benchmarks-profile.md).

The runtime directory is CRI-O's working directory as the helper sees it (the chart mounts the host's
nodeHelper.runtimeWorkingDir, "/" under systemd); the link's target is the archive's path on the host, which is
its path here because the chart mounts the work directory at the same path. Without the link (removed, or CRI-O
running elsewhere) CRI-O would create an ordinary container from the empty image, which fails to start: the
restore fails and the migration rolls back; it never starts anything else.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_IMAGE_ID = re.compile(r"[0-9a-f]{64}")


class ArchiveLinks:
    """The links `<runtime dir>/<image id>` -> archive that make CRI-O restore from an archive."""

    def __init__(self, runtime_dir: Path, archive_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.archive_dir = archive_dir

    def _link(self, image_id: str) -> Path:
        if not _IMAGE_ID.fullmatch(image_id):
            raise ValueError(f"not an image id: {image_id!r}")
        return self.runtime_dir / image_id

    def add(self, image_id: str, archive: Path) -> None:
        """Points the image's id at the archive (replacing a link left by an earlier attempt)."""
        link = self._link(image_id)
        temporary = link.with_name(f".{image_id}.new")
        temporary.unlink(missing_ok=True)
        os.symlink(archive, temporary)
        os.replace(temporary, link)

    def holds(self, image_id: str, archive: Path) -> bool:
        """Whether the image's id already points at this archive, and the archive is there."""
        link = self._link(image_id)
        return link.is_symlink() and os.readlink(link) == str(archive) and archive.is_file()

    def remove(self, image_id: str) -> bool:
        """Removes the image's link if it is one of ours (a link into the archive directory)."""
        link = self._link(image_id)
        if not link.is_symlink() or not self._ours(link):
            return False
        link.unlink(missing_ok=True)
        return True

    def _ours(self, link: Path) -> bool:
        return Path(os.readlink(link)).parent == self.archive_dir

    def sweep(self) -> list[str]:
        """Links whose archive is gone (a helper stopped between a cleanup's two steps): removed at start."""
        removed = []
        with os.scandir(self.runtime_dir) as entries:
            for entry in entries:
                path = Path(entry.path)
                if _IMAGE_ID.fullmatch(entry.name) and entry.is_symlink() and self._ours(path) and not path.exists():
                    path.unlink(missing_ok=True)
                    removed.append(entry.name)
        if removed:
            log.info("removed %d archive links whose archive is gone: %s", len(removed), removed)
        return removed
