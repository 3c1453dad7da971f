"""The name settle gave a restored container's own image goes once its pod has nothing left on the node, by name
(its base image stays for every other pod), and the migration then stops being listed to the garbage collection;
while the pod is there it stays, whoever asks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper.identity import tlsconfig
from nodehelper.runtime.commands import Tools
from nodehelper.runtime.containers import Containers, listed_pods
from nodehelper.runtime.images import checkpoint_image_name
from nodehelper.services.restore.aliases import AliasRecords, removable

UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
ALIAS = checkpoint_image_name(f"{UID}-app")
BASE, BASE_ID = "localhost/pm-counter:e2e", "b" * 64
POD, OTHER_POD = "5b0c1d2e-0000-4000-8000-00000000abcd", "5b0c1d2e-0000-4000-8000-00000000ffff"


class FakeContainers:
    """The uids of the pods the runtime lists on the node; None: the runtime must not be asked."""

    def __init__(self, pods: set[str] | None) -> None:
        self.pods = pods

    def pods_here(self) -> set[str]:
        assert self.pods is not None, "the runtime was asked although no alias has a recorded pod"
        return set(self.pods)


@pytest.fixture
def target(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningHelper]:
    helper = RunningHelper(tmp_path / "target", pki["target"])
    helper.images.all_checkpoint_images = lambda: sorted(  # type: ignore[attr-defined]
        i for i in helper.images.images if i.startswith("localhost/podmigration-checkpoint/")
    )
    helper.images.tag(BASE_ID, BASE)
    helper.images.tag(BASE_ID, ALIAS)  # what settle leaves: our name on the container's own image
    yield helper
    helper.stop()


def test_an_alias_goes_when_its_pod_is_gone_or_the_operator_says_so() -> None:
    aliases = {"a": POD, "b": OTHER_POD, "legacy": None}
    assert removable(aliases, {POD, OTHER_POD}, every=False) == []
    assert removable(aliases, {POD}, every=False) == ["b"]
    assert removable(aliases, set(), every=False) == ["a", "b"], "a pod of unknown use is never taken"
    assert removable(aliases, {POD}, every=True) == ["a", "b", "legacy"]


def test_a_pod_counts_while_it_has_a_sandbox_or_any_container_on_the_node() -> None:
    sandboxes = {"items": [{"id": "s1", "metadata": {"name": "web", "namespace": "default", "uid": POD}}]}
    containers = {
        "containers": [
            {"id": "c1", "state": "CONTAINER_EXITED", "labels": {"io.kubernetes.pod.uid": OTHER_POD}},
            {"id": "c2", "labels": None},
        ]
    }
    assert listed_pods(sandboxes, containers) == {POD, OTHER_POD}
    assert listed_pods({}, {"containers": None}) == set()

    seen: list[Sequence[str]] = []

    def crictl(argv: Sequence[str]) -> str:
        seen.append(argv)
        return json.dumps(sandboxes if "pods" in argv else containers)

    tools = Tools("unix:///crio.sock", Path("/s"), Path("/r"), "overlay")
    assert Containers(tools, crictl).pods_here() == {POD, OTHER_POD}
    assert any("ps" in argv and "-a" in argv for argv in seen), "exited containers count too"


def test_records_say_which_pod_each_alias_is_for_and_follow_no_link(tmp_path: Path) -> None:
    records = AliasRecords(tmp_path / "aliases")
    records.add(f"{UID}-app", POD)
    (records.root / f".{UID}-side.new").write_text("half")  # a write a stopped helper left
    assert records.pod_uid(f"{UID}-app") == POD and records.pod_uid(f"{UID}-other") is None
    assert records.ids(UID) == [f"{UID}-app", f"{UID}-side"] and records.migration_uids() == {UID}
    records.remove(f"{UID}-app"), records.remove(f"{UID}-side")
    assert list(records.root.iterdir()) == [] and records.migration_uids() == set()
    (tmp_path / "elsewhere").write_text(OTHER_POD)
    os.symlink(tmp_path / "elsewhere", records.root / f"{UID}-app")
    with pytest.raises(OSError):
        records.pod_uid(f"{UID}-app")
    with pytest.raises(Exception, match="invalid id"):
        records.add("../x", POD)


def test_gc_removes_an_alias_by_name_once_its_pod_is_gone_and_then_stops_asking(
    target: RunningHelper, pki: dict[str, Path]
) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    target.helper.alias_records.add(f"{UID}-app", POD)
    target.helper.containers = FakeContainers({POD})  # type: ignore[assignment]
    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": [UID]})

    assert call(target, "DELETE", f"/v1/migrations/{UID}", ctx=ctx) == (
        200,
        {"deleted": [], "kept": [], "inUse": [ALIAS]},
    )
    assert target.images.image_id(ALIAS) == BASE_ID, "the pod restarts from it while it is here"
    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": [UID]}), "asked again later"

    target.helper.containers = FakeContainers({OTHER_POD})  # type: ignore[assignment]
    assert call(target, "DELETE", f"/v1/migrations/{UID}", ctx=ctx) == (
        200,
        {"deleted": [ALIAS], "kept": [], "inUse": []},
    )
    assert target.images.removed == [ALIAS], "removed by its name, never by the id of the image others use"
    assert target.images.image_id(BASE) == BASE_ID and target.images.image_id(ALIAS) is None
    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": []}), "nothing left to ask about"


def test_an_alias_of_no_recorded_pod_stays_unless_the_operator_says_its_pod_is_gone(
    target: RunningHelper, pki: dict[str, Path]
) -> None:
    ctx = tlsconfig.client_context(pki["node"])
    target.helper.containers = FakeContainers(None)  # type: ignore[assignment]
    assert call(target, "DELETE", f"/v1/migrations/{UID}", ctx=ctx) == (
        200,
        {"deleted": [], "kept": [], "inUse": [ALIAS]},
    )
    target.helper.alias_records.add(f"{UID}-app", POD)
    assert call(target, "DELETE", f"/v1/migrations/{UID}?aliases=true", ctx=ctx) == (
        200,
        {"deleted": [ALIAS], "kept": [], "inUse": []},
    )
    assert target.images.image_id(BASE) == BASE_ID and target.helper.alias_records.ids(UID) == []
    assert call(target, "GET", "/v1/migrations", ctx=ctx) == (200, {"migrations": []})
