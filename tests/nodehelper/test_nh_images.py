import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from nodehelper.commands import CommandError, Tools, run
from nodehelper.containers import Containers
from nodehelper.errors import BadRequest, HelperError
from nodehelper.images import Images, checkpoint_image_name

TOOLS = Tools(
    "unix:///var/run/crio/crio.sock", Path("/var/lib/containers/storage"), Path("/run/containers/storage"), "overlay"
)
BUILDAH = [
    "buildah",
    "--root",
    "/var/lib/containers/storage",
    "--runroot",
    "/run/containers/storage",
    "--storage-driver",
    "overlay",
]
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


def test_checkpoint_image_build_commands() -> None:
    runner = FakeRunner({"from": "working-container-2\n"})
    image = checkpoint_image_name("mig1-app")
    assert image == "localhost/podmigration-checkpoint/mig1-app:latest"
    Images(TOOLS, runner).build_checkpoint_image(Path("/w/archives/mig1-app.tar"), "app", image)
    assert runner.calls == [
        BUILDAH + ["from", "scratch"],
        BUILDAH + ["add", "working-container-2", "/w/archives/mig1-app.tar", "/"],
        BUILDAH + ["config", "--annotation=io.kubernetes.cri-o.annotations.checkpoint.name=app", "working-container-2"],
        BUILDAH + ["commit", "--quiet", "working-container-2", image],
        BUILDAH + ["rm", "working-container-2"],
    ]


def test_failed_build_removes_working_container_and_reports_stderr() -> None:
    runner = FakeRunner(
        {"from": "wc\n", "commit": CommandError(["buildah", "commit"], 125, "no space left on device\n")}
    )
    with pytest.raises(CommandError, match="no space left on device"):
        Images(TOOLS, runner).build_checkpoint_image(Path("/a.tar"), "app", checkpoint_image_name("m-app"))
    assert runner.calls[-1] == BUILDAH + ["rm", "wc"]


def test_failed_rm_after_a_failed_build_does_not_hide_the_build_error(caplog: pytest.LogCaptureFixture) -> None:
    runner = FakeRunner(
        {
            "from": "wc\n",
            "commit": CommandError(["buildah", "commit"], 125, "no space left on device\n"),
            "rm": CommandError(["buildah", "rm"], 125, "container is busy\n"),
        }
    )
    with pytest.raises(CommandError, match="no space left on device"):
        Images(TOOLS, runner).build_checkpoint_image(Path("/a.tar"), "app", checkpoint_image_name("m-app"))
    assert runner.calls[-1] == BUILDAH + ["rm", "wc"]
    assert any("wc" in r.getMessage() and "container is busy" in r.getMessage() for r in caplog.records)


def test_failed_rm_after_a_successful_build_is_reported() -> None:
    runner = FakeRunner({"from": "wc\n", "rm": CommandError(["buildah", "rm"], 125, "container is busy\n")})
    with pytest.raises(CommandError, match="container is busy"):
        Images(TOOLS, runner).build_checkpoint_image(Path("/a.tar"), "app", checkpoint_image_name("m-app"))


def test_checkpoint_images_must_live_under_the_cleanup_prefix() -> None:
    runner = FakeRunner()
    with pytest.raises(BadRequest, match="podmigration-checkpoint"):
        Images(TOOLS, runner).build_checkpoint_image(Path("/a.tar"), "app", "docker.io/library/busybox:latest")
    assert runner.calls == []


def test_export_and_load_use_skopeo_with_the_node_storage() -> None:
    runner = FakeRunner()
    images = Images(TOOLS, runner)
    images.export("docker.io/library/busybox:1.36", Path("/w/tmp/x/image.tar"))
    images.load(Path("/w/tmp/y/image.tar"), "docker.io/library/busybox:1.36")
    assert runner.calls == [
        ["skopeo", "copy", "--quiet", STORE + "docker.io/library/busybox:1.36", "oci-archive:/w/tmp/x/image.tar"],
        ["skopeo", "copy", "--quiet", "oci-archive:/w/tmp/y/image.tar", STORE + "docker.io/library/busybox:1.36"],
    ]


def test_is_present_asks_crio() -> None:
    missing = CommandError(["crictl"], 1, 'time="..." level=fatal msg="no such image \\"x\\" present"')
    broken = CommandError(["crictl"], 1, "connect: connection refused")
    assert Images(TOOLS, FakeRunner()).is_present("busybox") is True
    assert Images(TOOLS, FakeRunner({"inspecti": missing})).is_present("busybox") is False
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
        {"names": ["docker.io/library/busybox:latest"]},
    ]
    images = Images(TOOLS, FakeRunner({"images": json.dumps(listing)}))
    assert images.checkpoint_images("mig1") == [
        "localhost/podmigration-checkpoint/mig1-app:latest",
        "localhost/podmigration-checkpoint/mig1-side:latest",
    ]


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
        Images(TOOLS, FakeRunner()).discard_checkpoint_image("docker.io/library/busybox:latest")
