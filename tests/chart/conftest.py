"""The chart tests' helm client."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm client: on the PATH, else the cached one e2e/cluster/build-helm.sh builds (the first time) and names.
    Never a skip: a chart test that cannot run fails and says why."""
    found = shutil.which("helm")
    if found:
        return found
    done = subprocess.run(["bash", str(ROOT / "e2e/cluster/build-helm.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"no helm client, and e2e/cluster/build-helm.sh could not build one:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]
