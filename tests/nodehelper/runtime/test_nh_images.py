import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from nhrunners import STORE, TOOLS, FakeRunner, LayoutReader

from nodehelper.errors import BadRequest, ChecksumMismatch, HelperError
from nodehelper.runtime.commands import CommandError, run
from nodehelper.runtime.containers import Containers
from nodehelper.runtime.images import Images, checkpoint_image_name, staged_bytes

BUILDAH = [
    "buildah",
    "--root",
    "/var/lib/containers/storage",
    "--runroot",
    "/run/containers/storage",
    "--storage-driver",
    "overlay",
]


def _archive(tmp_path: Path) -> tuple[Path, str, int]:
    archive = tmp_path / "archives" / "mig1-app.tar"
    archive.parent.mkdir()
    archive.write_bytes(b"checkpoint tar" * 1000)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest(), archive.stat().st_size


def test_checkpoint_image_is_the_archive_as_one_layer_copied_in_by_skopeo(tmp_path: Path) -> None:
    archive, sha, size = _archive(tmp_path)
    runner = LayoutReader()
    image = checkpoint_image_name("mig1-app")
    assert image == "localhost/podmigration-checkpoint/mig1-app:latest"
    Images(TOOLS, runner).build_checkpoint_image(archive, "app", image, sha256=sha, size=size, scratch=tmp_path)
    [argv] = runner.calls
    assert argv[:2] == ["skopeo", "--tmpdir"] and argv[3:5] == ["copy", "--quiet"]
    assert argv[5].startswith(f"oci:{argv[2]}/") and argv[6] == STORE + image
    assert runner.manifest["annotations"] == {"io.kubernetes.cri-o.annotations.checkpoint.name": "app"}
    assert runner.manifest["layers"] == [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{sha}", "size": size}
    ]
    assert runner.config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{sha}"]}
    assert runner.layer_inode == archive.stat().st_ino, "the layer is the archive linked in, not a copy"
    assert list(tmp_path.iterdir()) == [archive.parent], "the temporary layout is removed"


class Stager(FakeRunner):
    """Stages part of the layer in --tmpdir as skopeo's storage destination does, and reads the progress then."""

    def __call__(self, argv: Sequence[str]) -> str:
        staging = Path(argv[2]) / "container_images_storage123"
        staging.mkdir()
        (staging / "1").write_bytes(b"x" * 700)
        self.seen = staged_bytes(self.scratch)
        return super().__call__(argv)


def test_the_build_progress_is_what_skopeo_staged_not_the_linked_archive(tmp_path: Path) -> None:
    archive, sha, size = _archive(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    runner = Stager()
    runner.scratch = scratch
    Images(TOOLS, runner).build_checkpoint_image(
        archive, "app", checkpoint_image_name("m-app"), sha256=sha, size=size, scratch=scratch
    )
    assert runner.seen == 700 and size > 700
    assert staged_bytes(scratch) == 0, "nothing is left staged"


def test_a_layer_skopeo_finds_changed_is_a_checksum_mismatch(tmp_path: Path) -> None:
    archive, sha, size = _archive(tmp_path)
    stderr = f"writing blob: happened during read: Digest did not match, expected sha256:{sha}, got sha256:0\n"
    runner = FakeRunner({"--tmpdir": CommandError(["skopeo", "copy"], 1, stderr)})
    with pytest.raises(ChecksumMismatch, match="on disk does not match sha256"):
        Images(TOOLS, runner).build_checkpoint_image(
            archive, "app", checkpoint_image_name("m-app"), sha256=sha, size=size, scratch=tmp_path
        )


def test_other_build_failures_report_skopeo_stderr(tmp_path: Path) -> None:
    archive, sha, size = _archive(tmp_path)
    runner = FakeRunner({"--tmpdir": CommandError(["skopeo", "copy"], 1, "no space left on device\n")})
    with pytest.raises(CommandError, match="no space left on device"):
        Images(TOOLS, runner).build_checkpoint_image(
            archive, "app", checkpoint_image_name("m-app"), sha256=sha, size=size, scratch=tmp_path
        )
    assert list(tmp_path.iterdir()) == [archive.parent]


def test_checkpoint_images_must_live_under_the_cleanup_prefix(tmp_path: Path) -> None:
    runner = FakeRunner()
    with pytest.raises(BadRequest, match="podmigration-checkpoint"):
        Images(TOOLS, runner).build_checkpoint_image(
            tmp_path / "a.tar", "app", "example.org/library/busybox:latest", sha256="0" * 64, size=1, scratch=tmp_path
        )
    assert runner.calls == []


def test_export_and_load_use_skopeo_with_the_node_storage() -> None:
    runner = FakeRunner()
    images = Images(TOOLS, runner)
    images.export("example.org/library/busybox:1.36", Path("/w/tmp/x/image.tar"))
    images.load(Path("/w/tmp/y/image.tar"), "example.org/library/busybox:1.36")
    assert runner.calls == [
        ["skopeo", "copy", "--quiet", STORE + "example.org/library/busybox:1.36", "oci-archive:/w/tmp/x/image.tar"],
        ["skopeo", "copy", "--quiet", "oci-archive:/w/tmp/y/image.tar", STORE + "example.org/library/busybox:1.36"],
    ]


def test_is_present_asks_crio() -> None:
    missing = CommandError(["crictl"], 1, 'time="..." level=fatal msg="no such image \\"x\\" present"')
    broken = CommandError(["crictl"], 1, "connect: connection refused")
    assert Images(TOOLS, FakeRunner()).is_present("busybox") is True
    assert Images(TOOLS, FakeRunner({"inspecti": missing})).is_present("busybox") is False
    assert Images(TOOLS, FakeRunner({"inspecti": missing})).image_id("busybox") is None
    with pytest.raises(CommandError, match="connection refused"):
        Images(TOOLS, FakeRunner({"inspecti": broken})).is_present("busybox")
    runner = FakeRunner()
    Images(TOOLS, runner).is_present("busybox")
    assert runner.calls == [
        [
            "crictl",
            "--runtime-endpoint",
            TOOLS.cri_endpoint,
            "--image-endpoint",
            TOOLS.cri_endpoint,
            "inspecti",
            "-o",
            "json",
            "busybox",
        ]
    ]


def test_checkpoint_images_of_a_migration() -> None:
    listing = [
        {"names": ["localhost/podmigration-checkpoint/mig1-app:latest"]},
        {
            "names": [
                "localhost/podmigration-checkpoint/mig10-app:latest",
                "localhost/podmigration-checkpoint/mig1-side:latest",
            ]
        },
        {"names": None},
        {"names": ["localhost/pm-counter:e2e"]},
    ]
    images = Images(TOOLS, FakeRunner({"images": json.dumps(listing)}))
    assert images.checkpoint_images("mig1") == [
        "localhost/podmigration-checkpoint/mig1-app:latest",
        "localhost/podmigration-checkpoint/mig1-side:latest",
    ]


class RacingRunner(FakeRunner):
    """The first `races` listings fail as buildah does when an image it listed is removed before it reads it."""

    def __init__(self, listing: str, races: int, stderr: str = 'locating image with ID "ab12": image not known'):
        super().__init__({"images": listing})
        self.races, self.stderr = races, stderr

    def __call__(self, argv: Sequence[str]) -> str:
        if argv[7] == "images" and self.races:
            self.races -= 1
            self.calls.append(list(argv))
            raise CommandError(argv, 125, self.stderr)
        return super().__call__(argv)


def test_a_listing_that_races_with_a_removal_is_taken_again() -> None:
    listing = json.dumps([{"names": ["localhost/podmigration-checkpoint/mig1-app:latest"]}])
    runner = RacingRunner(listing, races=2)
    assert Images(TOOLS, runner).checkpoint_images("mig1") == ["localhost/podmigration-checkpoint/mig1-app:latest"]
    assert len(runner.calls) == 3
    with pytest.raises(CommandError, match="image not known"):  # not forever
        Images(TOOLS, RacingRunner(listing, races=99)).checkpoint_images("mig1")
    with pytest.raises(CommandError, match="permission denied"):  # any other failure at once
        Images(TOOLS, RacingRunner(listing, races=1, stderr="permission denied")).checkpoint_images("mig1")


def test_restored_reads_crio_info_of_newest_instances() -> None:
    pods = {
        "items": [
            {"id": "old", "createdAt": "1", "metadata": {"name": "web", "namespace": "default"}},
            {"id": "new", "createdAt": "2", "metadata": {"name": "web", "namespace": "default"}},
            {"id": "x", "createdAt": "3", "metadata": {"name": "web2", "namespace": "default"}},
        ]
    }
    ctrs = {
        "containers": [
            {"id": "a1", "createdAt": "5", "metadata": {"name": "app"}},
            {"id": "a2", "createdAt": "9", "metadata": {"name": "app"}},
            {"id": "s1", "createdAt": "6", "metadata": {"name": "side"}},
        ]
    }
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        sub = argv[5]
        if sub == "pods":
            return json.dumps(pods)
        if sub == "ps":
            assert argv[argv.index("--pod") + 1] == "new"
            return json.dumps(ctrs)
        return json.dumps({"status": {}, "info": {"restored": argv[-1] == "a2"}})

    assert Containers(TOOLS, runner).restored("default", "web") == {"app": True, "side": False}
    assert [c[-1] for c in calls if c[5] == "inspect"] == ["a2", "s1"]


def test_run_reports_stderr_and_missing_tools() -> None:
    with pytest.raises(CommandError, match="boom") as info:
        run(["sh", "-c", "echo boom >&2; exit 3"])
    assert info.value.returncode == 3
    with pytest.raises(HelperError, match="not installed"):
        run(["podmigration-no-such-tool"])


def test_discard_checkpoint_image_removes_an_existing_one_only() -> None:
    image = checkpoint_image_name("mig1-app")
    listing = json.dumps([{"names": [image]}, {"names": None}])
    runner = FakeRunner({"images": listing})
    assert Images(TOOLS, runner).discard_checkpoint_image(image) is True
    assert runner.calls == [BUILDAH + ["images", "--json"], BUILDAH + ["rmi", image]]
    runner = FakeRunner({"images": listing})
    assert Images(TOOLS, runner).discard_checkpoint_image(checkpoint_image_name("mig1-side")) is False
    assert runner.calls == [BUILDAH + ["images", "--json"]]
    with pytest.raises(BadRequest, match="podmigration-checkpoint"):
        Images(TOOLS, FakeRunner()).discard_checkpoint_image("example.org/library/busybox:latest")


def test_an_image_already_holding_the_archive_is_recognised() -> None:
    """A build asked for again keeps the image when its one layer is the archive (what a replacement may be
    starting from); another layer, or no such image, means a build."""
    image = "localhost/podmigration-checkpoint/mig1-app:latest"
    sha = "ab" * 32

    def images(diff_ids: list[str]) -> Images:
        return Images(
            TOOLS,
            FakeRunner(
                {
                    "images": json.dumps([{"names": [image]}]),
                    "inspect": json.dumps({"OCIv1": {"rootfs": {"diff_ids": diff_ids}}}),
                }
            ),
        )

    assert images([f"sha256:{sha}"]).holds_checkpoint(image, sha)
    assert not images([f"sha256:{'cd' * 32}"]).holds_checkpoint(image, sha)
    assert not images([f"sha256:{sha}", f"sha256:{'cd' * 32}"]).holds_checkpoint(image, sha)
    assert not Images(TOOLS, FakeRunner({"images": "[]"})).holds_checkpoint(image, sha)
