from pathlib import Path

import pytest

from nodehelper.errors import BadRequest, HelperError, NotFound
from nodehelper.node.freezer import Freezer

UID = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"
OTHER = "11111111-2222-3333-4444-555555555555"


def v1_cgroup(root: Path, *parts: str) -> Path:
    path = root.joinpath("freezer", *parts)
    path.mkdir(parents=True)
    (path / "freezer.state").write_text("THAWED\n")
    return path


def test_v1_cgroupfs_freezes_containers_not_conmon_or_other_pods(tmp_path: Path) -> None:
    pod = tmp_path / "freezer/kubepods/burstable" / f"pod{UID}"
    app = v1_cgroup(tmp_path, "kubepods/burstable", f"pod{UID}", "aaa111")
    side = v1_cgroup(tmp_path, "kubepods/burstable", f"pod{UID}", "bbb222")
    conmon = v1_cgroup(tmp_path, "kubepods/burstable", f"pod{UID}", "crio-conmon-aaa111")
    other = v1_cgroup(tmp_path, "kubepods/besteffort", f"pod{OTHER}", "ccc333")
    (pod / "freezer.state").write_text("THAWED\n")
    freezer = Freezer(tmp_path, timeout=0.5)

    assert freezer.freeze(UID) == [str(app), str(side)]
    assert (app / "freezer.state").read_text() == "FROZEN"
    assert (side / "freezer.state").read_text() == "FROZEN"
    for untouched in (pod, conmon, other):
        assert (untouched / "freezer.state").read_text() == "THAWED\n"

    assert freezer.freeze(UID) == [str(app), str(side)]  # idempotent
    assert freezer.thaw(UID) == [str(app), str(side)]
    assert (app / "freezer.state").read_text() == "THAWED"
    assert freezer.thaw(UID) == [str(app), str(side)]


def test_v1_systemd_slice_names_use_underscores(tmp_path: Path) -> None:
    uid_ = UID.replace("-", "_")
    scope = v1_cgroup(
        tmp_path, "kubepods.slice/kubepods-burstable.slice", f"kubepods-burstable-pod{uid_}.slice", "crio-abc.scope"
    )
    assert Freezer(tmp_path).freeze(UID) == [str(scope)]
    assert (scope / "freezer.state").read_text() == "FROZEN"


def v2_cgroup(root: Path, frozen: str) -> Path:
    path = root / "kubepods/burstable" / f"pod{UID}" / "aaa111"
    path.mkdir(parents=True)
    (path / "cgroup.freeze").write_text("0\n")
    (path / "cgroup.events").write_text(f"populated 1\nfrozen {frozen}\n")
    return path


def test_v2_waits_for_the_kernel_to_report_frozen(tmp_path: Path) -> None:
    ctr = v2_cgroup(tmp_path, frozen="1")  # fake kernel: already reports the frozen state
    assert Freezer(tmp_path, timeout=0.5).freeze(UID) == [str(ctr)]
    assert (ctr / "cgroup.freeze").read_text() == "1"


def test_v2_times_out_when_the_kernel_never_freezes(tmp_path: Path) -> None:
    v2_cgroup(tmp_path, frozen="0")
    with pytest.raises(HelperError, match="did not become frozen"):
        Freezer(tmp_path, timeout=0.1).freeze(UID)


def test_unknown_pod_and_bad_uid(tmp_path: Path) -> None:
    v1_cgroup(tmp_path, "kubepods", f"pod{OTHER}", "ccc")
    with pytest.raises(NotFound, match=UID):
        Freezer(tmp_path).freeze(UID)
    with pytest.raises(BadRequest):
        Freezer(tmp_path).freeze("../../etc")
    # a uid that is only a prefix of another pod's uid must not match it
    with pytest.raises(NotFound):
        Freezer(tmp_path).freeze(OTHER[:8])
