"""Names of the PodMigration API and the labels/annotations the operator writes.

Kept in one place because the CRD, the operator, the CLI and the tests must agree on them.
"""

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

#: In the replacement pod: the init container that holds the restored containers back until the moved emptyDir
#: volumes are in place, and the small emptyDir in which the target node-helper says so (file ``done``).
VOLUMES_GATE_CONTAINER = "podmigration-volumes"
VOLUMES_GATE_VOLUME = "podmigration-ready"
VOLUMES_GATE_PATH = "/podmigration-ready"

#: Label of the node-helper DaemonSet pods.
HELPER_LABEL_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"

CHECKPOINT_IMAGE_REPOSITORY = "localhost/podmigration-checkpoint"


def checkpoint_id(migration_uid: str, container: str) -> str:
    """Archive id on the helpers: prefixed by the migration uid so cleanup can go by migration."""
    return f"{migration_uid}-{container}".lower()


def checkpoint_image(migration_uid: str, container: str) -> str:
    """Name of the checkpoint image the target helper builds for one container."""
    return f"{CHECKPOINT_IMAGE_REPOSITORY}/{checkpoint_id(migration_uid, container)}:latest"


def volume_archive_id(migration_uid: str, volume: str) -> str:
    """Archive id of an emptyDir volume's content: ``<uid>--<volume>``; the double dash keeps it apart from
    every container's id (a container name never starts with a dash), the ``<uid>-`` prefix keeps cleanup."""
    return f"{migration_uid}--{volume}".lower()
