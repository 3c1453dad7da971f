"""Attacks on the emptyDir copy by something in the pod that keeps running while the helper works as root in its
volume (a container the freeze does not hold on the source, an ephemeral container of the replacement on the
target): a writer thread swaps directories for symlinks to a host directory while pack and unpack run, on a real
filesystem. Nothing of the host directory may be read into an archive, nothing in it written, created, chmodded or
chowned. Each test loops until the race is won on a copy that follows links (tarfile's add / extractall by path)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nodehelper.errors import HelperError
from nodehelper.node import beneath, volumes
from nodehelper.streams.diskspace import DiskSpace

SENTINEL = b"SENTINEL-a-host-secret-the-pod-must-never-see"
MTIME = 1_600_000_000
ROUNDS = 100  # the copy that followed links leaked in about one pack in eight here


@pytest.fixture(params=["openat2", "per-component"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of resolving below the volume root: openat2, and the O_NOFOLLOW walk of kernels without it."""
    monkeypatch.setattr(beneath, "use_openat2", request.param == "openat2")
    return str(request.param)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory the pod must not reach: a secret file, fixed modes, owners and times to compare."""
    directory = tmp_path / "host"
    directory.mkdir(mode=0o755)
    (directory / "secret").write_bytes(SENTINEL)
    (directory / "secret").chmod(0o640)
    for path in (directory / "secret", directory):
        os.utime(path, (MTIME, MTIME))
    return directory


def snapshot(directory: Path) -> list[tuple[str, int, int, int, float, bytes]]:
    """Names, modes, owners, mtimes and contents of a directory and what it holds."""
    paths = [directory, *sorted(directory.rglob("*"))]
    return [
        (
            str(p.relative_to(directory)),
            p.lstat().st_mode,
            p.lstat().st_uid,
            p.lstat().st_gid,
            p.lstat().st_mtime,
            p.read_bytes() if p.is_file() else b"",
        )
        for p in paths
    ]


@contextmanager
def attack(swap: Callable[[], None]) -> Iterator[None]:
    """Runs `swap` in a loop on a thread for the duration of the with-block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                swap()
            except OSError:
                pass  # the helper (or the previous swap) got there first: try again

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def swap_to_link(directory: Path, target: Path) -> Callable[[], None]:
    """Turns the directory into a symlink to `target` for a moment, then back."""

    def swap() -> None:
        real = directory.with_name(f".{directory.name}.real")
        os.rename(directory, real)
        os.symlink(target, directory)
        time.sleep(0.002)
        os.unlink(directory)
        os.rename(real, directory)
        time.sleep(0.002)

    return swap


def test_pack_never_reads_through_a_directory_swapped_for_a_link(tmp_path: Path, host: Path, resolution: str) -> None:
    """The pod's `d` holds a large decoy, then a file named as the host's secret: a copy that lists `d` by path,
    reads the decoy, then opens `d/secret` by path reads the host's file if `d` became a link meanwhile."""
    volume = tmp_path / "volume"
    (volume / "d").mkdir(parents=True)
    (volume / "d/a-decoy").write_bytes(b"\0" * (8 << 20))
    (volume / "d/secret").write_bytes(b"the pod's own data\n")
    before = snapshot(host)
    leaked, packed, refused = 0, 0, 0
    with attack(swap_to_link(volume / "d", host)):
        for _ in range(ROUNDS):
            out = io.BytesIO()
            try:
                volumes.pack(volume, out)
                packed += 1
            except (HelperError, OSError, tarfile.TarError):
                refused += 1  # the copy noticed the change and gave up: the migration rolls back
            leaked += SENTINEL in out.getvalue()
    print(f"\n{resolution}: {packed} packs, {refused} refused, {leaked} with the host's secret")
    assert leaked == 0
    assert snapshot(host) == before


def evil_free_archive(tmp_path: Path, names: list[str]) -> Path:
    """What pack makes of a volume with directories (mode 0700, an old mtime) holding a few files each."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, 0o700, 1000, 4321, 4321
            tar.addfile(info)
            for i in range(10):
                info = tarfile.TarInfo(f"{name}/f{i}")
                info.size, info.mode, info.uid, info.gid = 4, 0o600, 4321, 4321
                tar.addfile(info, io.BytesIO(b"evil"))
    archive = tmp_path / "archive.tar"
    archive.write_bytes(out.getvalue())
    return archive


def plant_links(volume: Path, names: list[str], host: Path) -> Callable[[], None]:
    """Replaces every unpacked directory by a symlink to the host directory, and plants links to the host's
    secret at file names about to be written."""

    def plant() -> None:
        for name in names:
            path = volume / name
            if path.is_dir() and not path.is_symlink():
                for i in range(10):
                    try:
                        os.symlink(host / "secret", path / f"f{i}")
                    except OSError:
                        pass
                os.rename(path, volume / f".{name}.moved")
                os.symlink(host, path)

    return plant


def test_unpack_writes_nothing_through_links_planted_while_it_runs(tmp_path: Path, host: Path, resolution: str) -> None:
    names = [f"d{i:02}" for i in range(20)]
    archive = evil_free_archive(tmp_path, names)
    before = snapshot(host)
    for round_ in range(ROUNDS):
        volume = tmp_path / f"volume{round_}"
        volume.mkdir()
        with attack(plant_links(volume, names, host)):
            try:
                volumes.unpack(archive, volume, DiskSpace(0, 0))
            except (HelperError, OSError, tarfile.TarError):
                pass  # refused: the replacement is not released, the migration rolls back
        assert snapshot(host) == before, f"round {round_}"


def test_release_never_follows_a_link_planted_at_the_gate_file(tmp_path: Path, host: Path) -> None:
    gate = tmp_path / "podmigration-ready"
    gate.mkdir()
    before = snapshot(host)
    for planted in (host / "created-by-root", host / "secret", host):
        (gate / "done").symlink_to(planted)
        with pytest.raises(HelperError, match="not the file the helper makes"):
            volumes.release(gate)
        assert snapshot(host) == before
        (gate / "done").unlink()
    volumes.release(gate)
    volumes.release(gate)  # idempotent for its own file
    done = gate / "done"
    assert stat.S_ISREG(done.lstat().st_mode) and done.stat().st_size == 0


def test_unpack_into_a_directory_planted_as_a_link_before_it_runs(tmp_path: Path, host: Path) -> None:
    """The replacement's ephemeral container was quicker: the directory the archive unpacks into is a link. (Not an
    attack on the old copy, whose tarfile filter refused it too; kept so that the fd walk keeps refusing it.)"""
    archive = evil_free_archive(tmp_path, ["sub"])
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "sub").symlink_to(host)
    before = snapshot(host)
    with pytest.raises(HelperError):
        volumes.unpack(archive, volume, DiskSpace(0, 0))
    assert snapshot(host) == before
