"""Names of the PodMigration API and the labels/annotations the operator writes.

Kept in one place because the CRD, the operator, the CLI and the tests must agree on them.
"""

import hashlib
import hmac
from typing import Any

from pmcontract import names

GROUP = "podmigration.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PodMigration"
PLURAL = "podmigrations"

#: On a PodMigration: ``"true"`` asks the operator to stop and roll back (before Finalizing).
CANCEL_ANNOTATION = f"{GROUP}/cancel"
#: On the source pod while it is out of traffic: the PodMigration that fenced it (also a lock).
FENCED_BY_ANNOTATION = f"{GROUP}/fenced-by"
#: On the source pod while it is out of traffic: JSON of the labels removed to take it out of Services.
FENCED_LABELS_ANNOTATION = f"{GROUP}/fenced-labels"
#: On the replacement pod: the PodMigration that created it.
MIGRATION_ANNOTATION = f"{GROUP}/migration"
#: On the replacement pod while it restores: JSON of the owner's selector labels held back until the hand-over,
#: so that its owner neither counts nor adopts it before it is verified.
HELD_LABELS_ANNOTATION = f"{GROUP}/held-labels"
#: On the replacement pod: the name of the pod it was restored from.
MIGRATED_FROM_ANNOTATION = f"{GROUP}/migrated-from"
#: On the replacement pod: JSON {container: image} of the images the pod was first created with. Its spec names
#: checkpoint images (on its node, once restored, names of those same images); every later migration goes by these.
ORIGINAL_IMAGES_ANNOTATION = f"{GROUP}/original-images"

#: In the replacement pod: the init container that holds the restored containers back until the moved emptyDir
#: volumes are in place, and the small emptyDir in which the target node-helper says so (file ``done``).
VOLUMES_GATE_CONTAINER = "podmigration-volumes"
VOLUMES_GATE_VOLUME = "podmigration-ready"
VOLUMES_GATE_PATH = "/podmigration-ready"

#: On the short-lived pod that has the target's kubelet pull a pod's base images (domain/baseimages.py): the uid
#: of the PodMigration it serves, for its cleanup and the e2e leftover checks.
PREPULL_LABEL = f"{GROUP}/prepull-for"

#: Label of the node-helper DaemonSet pods.
HELPER_LABEL_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"

# The names the node-helper shares (pmcontract.names): archive ids, checkpoint images, certificate names.
CHECKPOINT_IMAGE_REPOSITORY = names.CHECKPOINT_IMAGE_REPOSITORY
CHECKPOINT_IMAGE_TAG = names.CHECKPOINT_IMAGE_TAG
#: The file the target node-helper writes into the gate volume once the moved volumes are in place.
VOLUMES_GATE_FILE = f"{VOLUMES_GATE_PATH}/{names.GATE_FILE}"
checkpoint_id = names.archive_id
volume_archive_id = names.volume_archive_id
OPERATOR_CN = names.OPERATOR_CN
HELPER_CN_PREFIX = names.HELPER_CN_PREFIX
DEFAULT_SIGNER = names.DEFAULT_SIGNER
helper_cn = names.helper_cn
common_name = names.common_name


def checkpoint_image(migration_uid: str, container: str) -> str:
    """Name of the checkpoint image the target helper builds for one container."""
    return names.checkpoint_image(names.archive_id(migration_uid, container))


def keyed_digest(key: str, sha256: str) -> str:
    """What status records of an archive instead of its sha256 (which is a checkpoint image's layer digest):
    HMAC-SHA256 under the migration's key (status.digestKey) of the hex sha256, one-way in it; the helpers check
    it against the sha256 they recorded as the bytes went by."""
    return hmac.new(bytes.fromhex(key), sha256.encode(), hashlib.sha256).hexdigest()


def recorded_archive(status: dict[str, Any], item: dict[str, Any]) -> dict[str, str]:
    """The request fields by which a helper checks an archive against what the checkpoint (or pack) recorded."""
    return {"digest": item.get("digest", ""), "digestKey": status.get("digestKey", "")}
