"""GET /v1/migrations and DELETE /v1/migrations/{uid}: what migrations left on this node, and its removal once the
operator says a migration is over (the helper never decides on its own what is dead)."""

from __future__ import annotations

import logging

from nodehelper import validation
from nodehelper.errors import HelperError
from nodehelper.services.helper import Helper
from nodehelper.services.restore import aliases as aliases_module
from pmcontract.bodies import DeleteMigrationAnswer, MigrationsAnswer
from pmcontract.names import migration_uid

log = logging.getLogger(__name__)


def held_migrations(h: Helper) -> MigrationsAnswer:
    """The migrations with anything on this node (archive, partial upload, checkpoint image, alias or its
    record). The operator's garbage collection asks, then deletes those no longer under way (DELETE
    /v1/migrations/<uid>): the helper never decides on its own what is dead, so a restarted one deletes nothing
    before it is told. An alias still in use keeps its migration listed, so it is asked about again."""
    images = (name.rsplit("/", 1)[-1] for name in h.images.all_checkpoint_images())
    held = h.store.migration_uids() | h.alias_records.migration_uids()
    return {"migrations": sorted(held | {uid for n in images if (uid := migration_uid(n))})}


def delete_migration(h: Helper, migration_uid: str, aliases: bool = False) -> DeleteMigrationAnswer:
    """Removes the migration's archives and checkpoint images; an image still used by a container is kept.
    The names a settled restore gave its containers' own images (settle.py) go with ``aliases`` (the operator
    knows the pod is gone from here), else once the pod they were given for has nothing left on this node
    (aliases.py); one in use is kept and listed in ``inUse``, not in ``kept`` (nothing is wrong with it)."""
    uid = validation.archive_id(migration_uid)
    deleted = h.store.delete_migration(uid)
    names = h.images.checkpoint_images(uid)
    users = h.alias_records.pods([name for name in names if not h.images.is_ours(name)])
    pods = set() if aliases or not any(users.values()) else h.containers.pods_here()
    unused = set(aliases_module.removable(users, pods, aliases))
    in_use = sorted(set(users) - unused)
    kept = []
    for image in (name for name in names if name not in set(in_use)):
        try:
            h.checkpoint_images.release(image)
            h.images.remove(image)
            deleted.append(image)
        except HelperError as exc:
            kept.append({"image": image, "reason": str(exc)})
    h.alias_records.forget(uid, set(names) - set(deleted))
    if h.checkpoint_images.links is not None:
        h.checkpoint_images.links.sweep()  # a link whose image went without it (a helper stopped between)
    log.info(
        "cleaned up migration %s: deleted %s, kept %s, aliases in use %s",
        uid,
        deleted,
        [k["image"] for k in kept],
        in_use,
    )
    return {"deleted": deleted, "kept": kept, "inUse": in_use}
