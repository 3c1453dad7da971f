import pytest

from nodehelper import validation
from nodehelper.errors import BadRequest


@pytest.mark.parametrize("value", ["3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab-app", "a", "uid-c0"])
def test_valid_archive_ids(value: str) -> None:
    assert validation.archive_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "../etc/passwd", "a/b", "UPPER", "a_b", "-leading", "trailing-", "a.tar", "a\x00b", "a" * 300, 5, None],
)
def test_invalid_archive_ids(value: object) -> None:
    with pytest.raises(BadRequest):
        validation.archive_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "busybox",
        "example.org/library/busybox:1.36",
        "localhost/podmigration-checkpoint/u-c:latest",
        "example.net/a/b@sha256:" + "a" * 64,
    ],
)
def test_valid_image_refs(value: str) -> None:
    assert validation.image_ref(value) == value


@pytest.mark.parametrize("value", ["--help", "-x", "a b", "a;rm", "../x", "a//b", "", "$(id)"])
def test_invalid_image_refs(value: str) -> None:
    with pytest.raises(BadRequest):
        validation.image_ref(value)


def test_peer_url() -> None:
    assert validation.peer_url("https://10.0.0.5:9443") == ("10.0.0.5", 9443)
    assert validation.peer_url("https://[fd00::1]:9443/") == ("fd00::1", 9443)


@pytest.mark.parametrize(
    "value",
    [
        "http://10.0.0.5:9443",
        "https://10.0.0.5",
        "https://u:p@10.0.0.5:9443",
        "https://10.0.0.5:9443/v1/x",
        "https://h:99999",
        "https://h:1?x=1",
        7,
    ],
)
def test_invalid_peer_urls(value: object) -> None:
    with pytest.raises(BadRequest):
        validation.peer_url(value)


def test_names() -> None:
    assert validation.pod_name("web-5d8f.x") == "web-5d8f.x"
    for bad in ["Web", "a/b", "-a"]:
        with pytest.raises(BadRequest):
            validation.pod_name(bad)
    with pytest.raises(BadRequest):
        validation.namespace("a.b")
    with pytest.raises(BadRequest):
        validation.timeout_seconds(0, default=60)
    assert validation.timeout_seconds(None, default=60) == 60
