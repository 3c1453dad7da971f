"""The node's tools as the tests configure them, and command runners that record argv instead of running it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from nodehelper.runtime.commands import CommandError, Tools

TOOLS = Tools(
    "unix:///var/run/crio/crio.sock", Path("/var/lib/containers/storage"), Path("/run/containers/storage"), "overlay"
)
STORE = "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]"


class FakeRunner:
    """Records argv; answers from a script keyed by the subcommand, raising CommandError when told to."""

    def __init__(self, answers: dict[str, str | CommandError] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        sub = argv[7] if argv[0] == "buildah" else argv[5] if argv[0] == "crictl" else argv[1]
        answer = self.answers.get(sub, "")
        if isinstance(answer, CommandError):
            raise answer
        return answer


class LayoutReader(FakeRunner):
    """Reads the OCI layout skopeo is given while it still exists (it is a temporary directory)."""

    def __call__(self, argv: Sequence[str]) -> str:
        source = next((a for a in argv if a.startswith("oci:")), None)
        if source is not None:
            layout = Path(source[4:].rsplit(":", 1)[0])
            index = json.loads((layout / "index.json").read_text())
            blob = lambda digest: layout / "blobs" / "sha256" / digest.split(":")[1]  # noqa: E731
            self.manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
            self.config = json.loads(blob(self.manifest["config"]["digest"]).read_text())
            self.layer = blob(self.manifest["layers"][0]["digest"])
            self.layer_inode = self.layer.stat().st_ino
            self.layer_size = self.manifest["layers"][0]["size"]
            self.layer_bytes = self.layer.read_bytes()
            self.tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        return super().__call__(argv)
