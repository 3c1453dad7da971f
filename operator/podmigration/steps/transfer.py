"""Transferring: every archive (containers, volumes) from the source helper to the target helper, verified."""

from __future__ import annotations

import functools
import logging

from .. import api, phases
from ..helperclient import HelperError
from ..runtime import Obj, StopFlag
from .watching import WatchedCalls

log = logging.getLogger(__name__)


class TransferSteps(WatchedCalls):
    """The transfer step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _transfer(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        source, target = self._helper(status["sourceNode"]), self._helper(status["targetNode"])
        uid = migration["metadata"]["uid"]
        lists = {"containers": [dict(c) for c in status.get("containers") or []],
                 "volumes": [dict(v) for v in status.get("volumes") or []]}
        for key, items in lists.items():
            for item in items:
                if item.get("transferredBytes") is not None:
                    continue  # already on the target, verified by its sha256
                archive = item.get("id") or api.checkpoint_id(uid, item["name"])
                try:
                    # The target accepts this archive only from the source's helper, only as checkpointed.
                    self.d.helpers.grant_archive(target, archive, source, sha256=item.get("sha256", ""),
                                                 size=item.get("checkpointBytes", item.get("bytes", 0)),
                                                 seconds=self._remaining(migration))
                    send = functools.partial(self.d.helpers.send, source, archive, target,
                                             migration["spec"].get("compression", "zstd"),
                                             timeout=self._remaining(migration))
                    migration, result = self._watched(migration, source, archive, "transfer", item["name"], send)
                except HelperError as exc:
                    if exc.status != 409:
                        raise
                    # Write-once: the target has it from a send whose answer was lost (an operator restart);
                    # the image build and the unpack check it against the checkpoint's sha256 and size.
                    log.info("%s/%s: archive %s already on %s", self.namespace, self.name, archive, target.node)
                    result = {"bytes": item.get("checkpointBytes") or item.get("bytes") or 0}
                if result.get("sha256") and item.get("sha256") and result["sha256"] != item["sha256"]:
                    raise RuntimeError(f"archive {archive} changed between its checkpoint and its transfer")
                item.update(transferredBytes=result.get("bytes", 0), wireBytes=result.get("wireBytes", 0),
                            transferSeconds=result.get("seconds", 0))
                size = result.get("bytes", 0)
                migration = self._write(migration, {
                    key: items,
                    "progress": self._done("transfer", item["name"], size, result.get("seconds") or 0),
                    # Top level: bytes on the wire (after compression), as the CRD says; per item,
                    # transferredBytes is the archive size delivered and wireBytes what it took on the wire.
                    "transferredBytes": sum(i.get("wireBytes") or 0 for group in lists.values() for i in group)})
                self._progress(migration, f"sent {key[:-1]} {item['name']}")
        return self._transition(migration, phases.RESTORING, message=f"restoring on {status['targetNode']}")
