"""Transferring: every archive (containers, volumes) from the source helper to the target helper, verified."""

from __future__ import annotations

import functools
import logging

from ... import api
from ...api import phases
from ...api.types import Obj
from ...domain.helpers import HelperError
from ..context import Run
from . import watching

log = logging.getLogger(__name__)


def transfer(run: Run, migration: Obj) -> Obj:
    status = migration["status"]
    source, target = run.helper(status["sourceNode"]), run.helper(status["targetNode"])
    uid = migration["metadata"]["uid"]
    lists = {
        "containers": [dict(c) for c in status.get("containers") or []],
        "volumes": [dict(v) for v in status.get("volumes") or []],
    }
    for key, items in lists.items():
        for item in items:
            if item.get("transferredBytes") is not None:
                continue  # already on the target, verified by its digest
            archive = item.get("id") or api.checkpoint_id(uid, item["name"])
            try:
                # The target accepts this archive only from the source's helper, only as checkpointed.
                run.deps.helpers.grant_archive(
                    target,
                    archive,
                    source,
                    recorded=api.recorded_archive(status, item),
                    size=item.get("checkpointBytes", item.get("bytes", 0)) or 0,
                    seconds=run.remaining(migration),
                )
                send = functools.partial(
                    run.deps.helpers.send,
                    source,
                    archive,
                    target,
                    migration["spec"].get("compression", "zstd"),
                    timeout=run.remaining(migration),
                )
                migration, result = watching.watched(run, migration, source, archive, "transfer", item["name"], send)
            except HelperError as exc:
                if exc.status != 409:
                    raise
                # Write-once: the target has it from a send whose answer was lost (an operator restart);
                # the image build and the unpack check it against the checkpoint's digest and size.
                log.info("%s/%s: archive %s already on %s", run.namespace, run.name, archive, target.node)
                result = {"bytes": item.get("checkpointBytes") or item.get("bytes") or 0}
            if result.get("sha256") and api.keyed_digest(status.get("digestKey", ""), result["sha256"]) != item.get(
                "digest"
            ):
                raise RuntimeError(f"archive {archive} changed between its checkpoint and its transfer")
            item.update(
                transferredBytes=result.get("bytes", 0),
                wireBytes=result.get("wireBytes", 0),
                transferSeconds=result.get("seconds", 0),
            )
            size = result.get("bytes", 0)
            migration = run.write(
                migration,
                {
                    key: items,
                    "progress": watching.done(run, "transfer", item["name"], size, result.get("seconds") or 0),
                    # Top level: bytes on the wire (after compression), as the CRD says; per item,
                    # transferredBytes is the archive size delivered and wireBytes what it took on the wire.
                    "transferredBytes": sum(i.get("wireBytes") or 0 for group in lists.values() for i in group),
                },
            )
            run.progress(migration, f"sent {key[:-1]} {item['name']}")
    return run.transition(migration, phases.RESTORING, message=f"restoring on {status['targetNode']}")
