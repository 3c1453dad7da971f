"""Shared fixtures: a throwaway PKI made with the openssl CLI, and running helper servers on 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhpki import make_ca, signed_cert
from nhtestlib import RunningHelper

from nodehelper.identity import tlsconfig
from nodehelper.streams import diskspace
from pmcontract import names


@pytest.fixture(autouse=True)
def disk_without_percentage_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's real free space, on a disk reported as size 0: only PM_MIN_FREE_BYTES applies, so how full
    the disk running the tests is does not decide them. Tests of the percentage floor report their own sizes."""
    real = diskspace.usage
    monkeypatch.setattr(diskspace, "usage", lambda directory: diskspace.Usage(real(directory).free, 0))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TLS dirs signed by the project CA: `node` (the operator's identity, which every control call needs),
    `source` and `target` (the helpers of those nodes), `other` (a CA-signed name that is neither); and `rogue`
    (own CA: a cert the helper must refuse)."""
    root = tmp_path_factory.mktemp("pki")
    ca = make_ca(root / "ca", "podmigration-test-ca")
    rogue_ca = make_ca(root / "rogue-ca", "rogue-ca")
    signed_cert(root / "node", ca, names.OPERATOR_CN)
    for node in ("source", "target"):
        signed_cert(root / node, ca, names.helper_cn(node))
    signed_cert(root / "other", ca, "podmigration-peer")
    signed_cert(root / "rogue", rogue_ca, "rogue")
    return {name: root / name for name in ("node", "source", "target", "other", "rogue")}


@pytest.fixture
def peer_ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    """The source node's helper identity, as it uploads to the target."""
    return tlsconfig.client_context(pki["source"])


@pytest.fixture
def helpers(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[RunningHelper, RunningHelper]]:
    """Two helpers, a source and a target, each with its own archive store."""
    source = RunningHelper(tmp_path / "source", pki["source"])
    target = RunningHelper(tmp_path / "target", pki["target"])
    yield source, target
    source.stop()
    target.stop()


@pytest.fixture
def ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    """The operator's identity, as it makes every control call."""
    return tlsconfig.client_context(pki["node"])
