"""The one place where buildah, skopeo, crictl and iptables command lines are built and run (list argv, never a
shell)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nodehelper.errors import HelperError

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], str]


class CommandError(HelperError):
    """A tool exited non-zero; the message carries its stderr, which says what actually went wrong."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.argv[:3])} ... failed (exit {returncode}): {self.stderr[-2000:]}")


def run(argv: Sequence[str], timeout: float = 900) -> str:
    """Runs a command and returns its stdout; raises CommandError with stderr on failure."""
    started = time.monotonic()
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise HelperError(f"{argv[0]} is not installed in the node-helper image") from None
    except subprocess.TimeoutExpired:
        raise HelperError(f"{' '.join(argv[:3])} ... timed out after {timeout}s") from None
    log.debug("ran %s (exit %d, %.3fs)", " ".join(argv), proc.returncode, time.monotonic() - started)
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return proc.stdout


@dataclass(frozen=True)
class Tools:
    """Command lines pinned to the node's CRI-O socket and container storage, whatever the image's defaults are."""

    cri_endpoint: str
    storage_root: Path
    storage_runroot: Path
    storage_driver: str

    def buildah(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.storage_root),
            "--runroot",
            str(self.storage_runroot),
            "--storage-driver",
            self.storage_driver,
            *args,
        ]

    def skopeo(self, *args: str) -> list[str]:
        return ["skopeo", *args]

    def crictl(self, *args: str) -> list[str]:
        return ["crictl", "--runtime-endpoint", self.cri_endpoint, "--image-endpoint", self.cri_endpoint, *args]

    def in_netns(self, netns: Path, *argv: str) -> list[str]:
        """`argv` run in the network namespace pinned at `netns` (and in the helper's other namespaces)."""
        return ["nsenter", f"--net={netns}", "--", *argv]

    def storage_ref(self, image: str) -> str:
        """containers-storage transport reference naming this node's store explicitly."""
        return f"containers-storage:[{self.storage_driver}@{self.storage_root}+{self.storage_runroot}]{image}"
