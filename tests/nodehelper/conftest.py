"""Shared fixtures: a throwaway PKI made with the openssl CLI, and running helper servers on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

from nodehelper import tlsconfig
from nodehelper.api import Helper
from nodehelper.archives import ArchiveStore
from nodehelper.freezer import Freezer
from nodehelper.server import HelperServer


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed_cert(out: Path, ca_dir: Path, cn: str) -> None:
    """Writes ca.crt/tls.crt/tls.key into `out`, the cert signed by the CA in `ca_dir`."""
    out.mkdir(parents=True, exist_ok=True)
    ext = out / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(out / "tls.key"), "-out", str(out / "tls.csr"), "-subj", f"/CN={cn}")  # fmt: skip
    _openssl("x509", "-req", "-in", str(out / "tls.csr"), "-CA", str(ca_dir / "ca.crt"), "-CAkey", str(ca_dir / "ca.key"),
             "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(out / "tls.crt"))  # fmt: skip
    shutil.copy(ca_dir / "ca.crt", out / "ca.crt")


def _ca(directory: Path, cn: str) -> Path:
    directory.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.crt"), "-subj", f"/CN={cn}")  # fmt: skip
    return directory


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TLS dirs: `node` (signed by the project CA) and `rogue` (its own CA, presenting a cert the helper must refuse)."""
    root = tmp_path_factory.mktemp("pki")
    ca = _ca(root / "ca", "podmigration-test-ca")
    rogue_ca = _ca(root / "rogue-ca", "rogue-ca")
    _signed_cert(root / "node", ca, "podmigration-node-helper")
    _signed_cert(root / "rogue", rogue_ca, "rogue")
    return {"node": root / "node", "rogue": root / "rogue"}


class FakeImages:
    """Stands in for buildah/skopeo: records what the helper asked for."""

    def __init__(self) -> None:
        self.images: set[str] = set()
        self.removed: list[str] = []
        self.in_use: set[str] = set()

    def checkpoint_images(self, migration_uid: str) -> list[str]:
        return sorted(i for i in self.images if i.startswith(f"localhost/podmigration-checkpoint/{migration_uid}-"))

    def remove(self, image: str) -> None:
        from nodehelper.errors import HelperError

        if image in self.in_use:
            raise HelperError(f"image {image} is in use by a container")
        self.images.discard(image)
        self.removed.append(image)


class RunningHelper:
    def __init__(self, root: Path, tls_dir: Path) -> None:
        self.store = ArchiveStore(root / "archives")
        self.images = FakeImages()
        self.helper = Helper(
            node_name=root.name,
            store=self.store,
            kubelet=None,  # type: ignore[arg-type]  # set by the tests that need one
            freezer=Freezer(root / "cgroup"),
            images=self.images,  # type: ignore[arg-type]
            containers=None,  # type: ignore[arg-type]
            peer_context=tlsconfig.client_context(tls_dir),
            scratch_dir=root / "tmp",
        )
        self.server = HelperServer(("127.0.0.1", 0), tlsconfig.server_context(tls_dir), self.helper)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def helpers(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[RunningHelper, RunningHelper]]:
    """Two helpers, a source and a target, each with its own archive store."""
    source = RunningHelper(tmp_path / "source", pki["node"])
    target = RunningHelper(tmp_path / "target", pki["node"])
    yield source, target
    source.stop()
    target.stop()
