"""A checkpoint image as an OCI image layout whose one layer is the checkpoint archive itself.

The archive is an uncompressed tar of exactly what CRI-O's restore reads from the image's root, so it can be the
layer as it is: its sha256 is both the layer digest and its diff id. Linking it in (no copy) and letting skopeo
copy the layout into the node's storage replaces `buildah add` (unpack) and `buildah commit` (re-pack, unpack
again): about half the bytes written, and the digest the checkpoint recorded is verified on the way by skopeo."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
from pathlib import Path

from nodehelper import validation

CHECKPOINT_ANNOTATION = "io.kubernetes.cri-o.annotations.checkpoint.name"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
TAG = "latest"
#: Labels of a pointer image (write_pointer): the archive it restores from.
ARCHIVE_LABEL, SHA256_LABEL = "podmigration.dev/archive", "podmigration.dev/archive-sha256"
#: In the config of every image built here: random, so its id cannot be computed from anything outside this node,
#: and the mark of an image of ours (a name of ours on any other image is an alias of a restored pod's own image).
NONCE_LABEL = "podmigration.dev/nonce"
#: An empty tar archive: two 512-byte zero blocks.
EMPTY_TAR_BYTES = 1024
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _link_layer(archive: Path, dest: Path) -> None:
    """A hard link where the archive and the layout share a file system (the helper's work dir), else a symlink:
    never a copy of the process memory."""
    try:
        os.link(archive, dest)
    except OSError:
        os.symlink(archive, dest)


def _write(
    layout: Path, layer: dict[str, object], diff_id: str, labels: dict[str, str], annotations: dict[str, str]
) -> str:
    """The layout's index, manifest and config around its one layer blob (already in place); its skopeo reference.
    The config carries a fresh random nonce (NONCE_LABEL), so the image id is this build's alone."""
    config = _blob(
        layout,
        json.dumps(
            {
                "architecture": _ARCHITECTURES.get(platform.machine(), platform.machine()),
                "os": "linux",
                "config": {"Labels": {**labels, NONCE_LABEL: secrets.token_hex(32)}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode(),
    )
    manifest = _blob(
        layout,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, **config},
                "layers": [{"mediaType": LAYER, **layer}],
                "annotations": annotations,
            }
        ).encode(),
    )
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {"mediaType": MANIFEST, **manifest, "annotations": {"org.opencontainers.image.ref.name": TAG}}
                ],
            }
        )
    )
    return f"oci:{layout}:{TAG}"


def _start(layout: Path) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


def write(layout: Path, archive: Path, sha256: str, size: int, container: str) -> str:
    """Writes the layout into the empty directory `layout`; returns the skopeo reference `oci:<dir>:<tag>`.
    `sha256` and `size` are the archive's as the checkpoint recorded them: skopeo refuses a layer that differs."""
    sha256 = validation.sha256_hex(sha256)
    validation.container_name(container)
    _start(layout)
    _link_layer(archive, layout / "blobs" / "sha256" / sha256)
    # What CRI-O looks for to treat the image as a checkpoint (the annotation buildah config --annotation sets).
    return _write(
        layout, {"digest": f"sha256:{sha256}", "size": size}, f"sha256:{sha256}", {}, {CHECKPOINT_ANNOTATION: container}
    )


def write_pointer(layout: Path, archive_id: str, sha256: str) -> str:
    """A layout of an image with nothing in it but labels naming the archive: the image a restore straight from
    the archive gives the kubelet (see archivelinks); its one layer is an empty tar. Its id is unguessable (the
    nonce), so no pod can name it by id while it is linked to the archive."""
    _start(layout)
    empty = _blob(layout, bytes(EMPTY_TAR_BYTES))
    digest = str(empty["digest"])
    return _write(
        layout,
        empty,
        digest,
        {ARCHIVE_LABEL: validation.archive_id(archive_id), SHA256_LABEL: validation.sha256_hex(sha256)},
        {},
    )
