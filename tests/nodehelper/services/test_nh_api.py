"""Helper (services/) without HTTP: start-up housekeeping and how peer failures are classified."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nodehelper.errors import UpstreamError
from nodehelper.peers import client
from nodehelper.services import images
from nodehelper.services.helper import Helper
from nodehelper.services.restore.aliases import AliasRecords
from nodehelper.store.archives import ArchiveStore


def make_helper(root: Path) -> Helper:
    return Helper(
        node_name="node",
        store=ArchiveStore(root / "archives"),
        kubelet=None,  # type: ignore[arg-type]
        freezer=None,  # type: ignore[arg-type]
        images=None,  # type: ignore[arg-type]
        containers=None,  # type: ignore[arg-type]
        peer_context=None,  # type: ignore[arg-type]
        scratch_dir=root / "tmp",
        alias_records=AliasRecords(root / "aliases"),
    )


def test_stale_temporary_image_archives_are_removed_at_start(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    (scratch / "tmpabc").mkdir(parents=True)
    (scratch / "tmpabc" / "image.tar").write_bytes(b"layers")
    (scratch / "stray.tar").write_bytes(b"layers")
    helper = make_helper(tmp_path)
    assert list(helper.scratch_dir.iterdir()) == []


class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(body)
        self.status = 200
        self.headers = headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class FakeConnection:
    def __init__(self, response: FakeResponse) -> None:
        self.response = response

    def request(self, method: str, path: str) -> None:
        pass

    def getresponse(self) -> FakeResponse:
        return self.response

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "body, headers, message",
    [
        (b"layers", {"Content-Encoding": "identity"}, "X-Content-Sha256"),
        (b"layers", {"Content-Encoding": "identity", "X-Content-Sha256": "not-a-digest"}, "X-Content-Sha256"),
        (b"not zstd at all", {"Content-Encoding": "zstd", "X-Content-Sha256": "0" * 64}, "corrupt zstd"),
        (b"layers", {"Content-Encoding": "gzip", "X-Content-Sha256": "0" * 64}, "unsupported Content-Encoding"),
    ],
)
def test_a_bad_image_answer_from_the_peer_is_an_upstream_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, headers: dict[str, str], message: str
) -> None:
    helper = make_helper(tmp_path)
    response = FakeResponse(body, headers)
    monkeypatch.setattr(client, "connect", lambda *args, **kwargs: FakeConnection(response))
    with pytest.raises(UpstreamError, match=message) as info:
        images.copy_image_from(helper, "10.0.0.2", 9443, "worker-1", "localhost/app:dev")
    assert info.value.status == 502
    assert list(helper.scratch_dir.iterdir()) == []
