"""emptyDir pack on the source: what it refuses, and a copy the containers changed under is discarded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nhcalls import call
from nhtestlib import RunningHelper
from nhvolumes import (
    SOURCE_UID,
    empty_dir,
    fill_volume,
    frozen_container,
    pack_request,
)

from nodehelper.node import volumes


@pytest.mark.parametrize(
    "request_body, status",
    [
        ({"podUID": SOURCE_UID, "volume": "nope", "id": "mig1-vol-nope"}, 404),
        ({"podUID": SOURCE_UID, "volume": "../data", "id": "mig1-vol-data"}, 400),
        ({"podUID": SOURCE_UID, "volume": "Data", "id": "mig1-vol-data"}, 400),
        ({"podUID": "../x", "volume": "data", "id": "mig1-vol-data"}, 400),
        ({"podUID": SOURCE_UID, "volume": "data", "id": "../x"}, 400),
        ({"podUID": SOURCE_UID, "volume": "data"}, 400),
    ],
)
def test_pack_refusals(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, request_body: dict[str, str], status: int
) -> None:
    source, _ = helpers
    empty_dir(source, SOURCE_UID, "data")
    assert call(source, "POST", "/v1/volumes/pack", request_body, ctx=ctx)[0] == status
    assert list(source.store.root.iterdir()) == []


def test_pack_refuses_a_pod_with_a_container_the_freeze_does_not_hold(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    """An ephemeral container (or a restarted one) has a cgroup of its own, created after the freeze."""
    source, _ = helpers
    fill_volume(empty_dir(source, SOURCE_UID, "data"))
    frozen_container(source, SOURCE_UID)
    debugger = frozen_container(source, SOURCE_UID, "debugger", state="THAWED")
    status, body = pack_request(source, ctx)
    assert status == 409 and "not frozen" in body["error"] and str(debugger) in body["error"], body
    assert list(source.store.root.iterdir()) == []


@pytest.mark.parametrize("state, message", [("THAWED", "not frozen"), ("FROZEN", "changed while emptyDir data")])
def test_a_container_appearing_during_the_copy_discards_it(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, monkeypatch: pytest.MonkeyPatch, state: str, message: str
) -> None:
    """Whatever ran meanwhile may have changed the volume under the copy: no archive, the migration rolls back."""
    source, _ = helpers
    fill_volume(empty_dir(source, SOURCE_UID, "data"))
    frozen_container(source, SOURCE_UID)
    real_pack = volumes.pack

    def pack_while_a_container_starts(directory: Path, out: Any) -> int:
        frozen_container(source, SOURCE_UID, "started-meanwhile", state=state)
        return real_pack(directory, out)

    monkeypatch.setattr(volumes, "pack", pack_while_a_container_starts)
    status, body = pack_request(source, ctx)
    assert status == 409 and message in body["error"], body
    assert list(source.store.root.iterdir()) == []
