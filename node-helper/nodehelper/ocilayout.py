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
from pathlib import Path

from . import validation

CHECKPOINT_ANNOTATION = "io.kubernetes.cri-o.annotations.checkpoint.name"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
TAG = "latest"
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


def write(layout: Path, archive: Path, sha256: str, size: int, container: str) -> str:
    """Writes the layout into the empty directory `layout`; returns the skopeo reference `oci:<dir>:<tag>`.
    `sha256` and `size` are the archive's as the checkpoint recorded them: skopeo refuses a layer that differs."""
    sha256 = validation.sha256_hex(sha256)
    validation.container_name(container)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    _link_layer(archive, layout / "blobs" / "sha256" / sha256)
    config = _blob(layout, json.dumps({
        "architecture": _ARCHITECTURES.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256}"]},
    }).encode())
    manifest = _blob(layout, json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, **config},
        "layers": [{"mediaType": LAYER, "digest": f"sha256:{sha256}", "size": size}],
        # What CRI-O looks for to treat the image as a checkpoint (the annotation buildah config --annotation sets).
        "annotations": {CHECKPOINT_ANNOTATION: container},
    }).encode())
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MANIFEST, **manifest, "annotations": {"org.opencontainers.image.ref.name": TAG}}],
    }))
    return f"oci:{layout}:{TAG}"
