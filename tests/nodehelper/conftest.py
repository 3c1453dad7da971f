"""Shared fixtures: a throwaway PKI made with the openssl CLI, and running helper servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nhtestlib import RunningHelper, make_ca, signed_cert


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TLS dirs: `node` (signed by the project CA) and `rogue` (own CA: a cert the helper must refuse)."""
    root = tmp_path_factory.mktemp("pki")
    ca = make_ca(root / "ca", "podmigration-test-ca")
    rogue_ca = make_ca(root / "rogue-ca", "rogue-ca")
    signed_cert(root / "node", ca, "podmigration-node-helper")
    signed_cert(root / "rogue", rogue_ca, "rogue")
    return {"node": root / "node", "rogue": root / "rogue"}


@pytest.fixture
def helpers(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[RunningHelper, RunningHelper]]:
    """Two helpers, a source and a target, each with its own archive store."""
    source = RunningHelper(tmp_path / "source", pki["node"])
    target = RunningHelper(tmp_path / "target", pki["node"])
    yield source, target
    source.stop()
    target.stop()
