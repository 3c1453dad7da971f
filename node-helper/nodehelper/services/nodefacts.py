"""GET /v1/node: what the node shows of its readiness for migrations that the API server cannot (CRI-O's restore
setting, the managed CRIU block, where runc would find CRIU, free space against the floor), for `kubectl migrate
check`. Read on request, not at start, so that the answer follows the node; cached a few seconds, since the endpoint
takes no client certificate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nodehelper.criu import criuconfig
from nodehelper.errors import HelperError
from nodehelper.runtime import criocheck, criupath
from nodehelper.streams import diskspace
from pmcontract.bodies import NodeAnswer

#: Seconds an answer is reused.
TTL = 5.0
#: Seconds CRI-O may take to answer its configuration: the whole answer stays well under two seconds.
CRIO_TIMEOUT = 1.5


class NodeFacts:
    def __init__(
        self,
        node_name: str,
        cri_endpoint: str,
        criu_config: Path,
        work_dir: Path,
        space: diskspace.DiskSpace,
        criu_search: Sequence[criupath.SearchDir] = (),
        read_crio: Callable[[str, float], dict[str, Any]] = criocheck.read_config,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_name = node_name
        self.cri_endpoint = cri_endpoint
        self.criu_config = criu_config
        self.work_dir = work_dir
        self.space = space
        self.criu_search = criu_search
        self.read_crio = read_crio
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, NodeAnswer] | None = None

    def answer(self) -> NodeAnswer:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= TTL:
                self._cached = (now, self._compute())
            return self._cached[1]

    def _compute(self) -> NodeAnswer:
        restores: bool | None
        try:
            restores, error = criocheck.restores(self.read_crio(self.cri_endpoint, CRIO_TIMEOUT)), ""
        except criocheck.READ_ERRORS as exc:
            restores, error = None, f"{self.cri_endpoint}: {exc}"
        try:
            usage = diskspace.usage(self.work_dir)
        except HelperError:
            usage = diskspace.Usage(0, 0)
        return {
            "node": self.node_name,
            "crio_restores": restores,
            "crio_error": error,
            "criu_config": str(self.criu_config),
            "criu_block": criuconfig.has_block(self.criu_config),
            "criu_searched": [d.node_path for d in self.criu_search],
            "criu_path": criupath.find(self.criu_search),
            "work_dir": str(self.work_dir),
            "free_bytes": usage.free,
            "floor_bytes": diskspace.floor(usage.size, self.space.min_free, self.space.min_free_percent),
        }
