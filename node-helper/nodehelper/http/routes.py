"""The route table: every endpoint of the helper, once, with its method, its path (pmcontract.paths), what handles
it and who may call it (authz.Access). The handler (handler.py) finds a request's route here, checks the caller
against it, and runs it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from nodehelper.errors import MethodNotAllowed, NotFound
from nodehelper.http import endpoints
from nodehelper.http.authz import Access
from nodehelper.http.exchange import Backend, Exchange
from nodehelper.services import checkpoint, pods, transfer, volumes
from nodehelper.services import images as image_copies
from pmcontract import paths

#: Takes the exchange and the path's parameters; answers and returns the status.
Endpoint = Callable[[Exchange, Mapping[str, str]], int]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: Endpoint
    access: Access
    #: False for the cheap calls that must answer while every worker is busy (the readiness probe, the progress
    #: polls of the very streams that keep the workers busy).
    needs_worker: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.path)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        object.__setattr__(self, "pattern", re.compile(regex))


def post(action: Callable[[Backend, Any], Mapping[str, Any]]) -> Endpoint:
    """An endpoint that takes a JSON object and answers one."""

    def endpoint(x: Exchange, params: Mapping[str, str]) -> int:
        return x.send_json(200, action(x.server, x.json()))

    return endpoint


OPERATOR, PEER, PUBLIC = Access.OPERATOR, Access.PEER, Access.PUBLIC

TABLE: tuple[Route, ...] = (
    Route("GET", paths.HEALTHZ, endpoints.healthz, PUBLIC, needs_worker=False),
    Route("GET", paths.NODE, endpoints.node, PUBLIC),
    Route("POST", paths.CHECKPOINT, post(lambda b, body: checkpoint.checkpoint(b.helper, body)), OPERATOR),
    Route("POST", paths.FREEZE, post(lambda b, body: checkpoint.freeze(b.helper, body)), OPERATOR),
    Route("POST", paths.THAW, post(lambda b, body: checkpoint.thaw(b.helper, body)), OPERATOR),
    Route("POST", paths.SEND, post(lambda b, body: transfer.send(b.helper, body)), OPERATOR),
    Route("PUT", paths.ARCHIVE, endpoints.put_archive, PEER),
    Route("POST", paths.GRANTS, post(lambda b, body: b.helper.grants.add(body)), OPERATOR),
    Route("POST", paths.IMAGES_ENSURE, post(lambda b, body: image_copies.ensure_images(b.helper, body)), OPERATOR),
    Route("GET", paths.IMAGES_EXPORT, endpoints.image_export, PEER),
    Route("POST", paths.IMAGES_CHECKPOINT, post(lambda b, body: b.helper.checkpoint_images.build(body)), OPERATOR),
    Route("GET", paths.RESTORED, endpoints.restored, OPERATOR),
    Route("POST", paths.SETTLE, post(lambda b, body: b.helper.settler.settle(body)), OPERATOR),
    Route("POST", paths.NETWORK_CUT, post(lambda b, body: pods.cut_network(b.pods, body)), OPERATOR),
    Route("POST", paths.NETWORK_RESTORE, post(lambda b, body: pods.restore_network(b.pods, body)), OPERATOR),
    Route("POST", paths.KILL, post(lambda b, body: pods.kill(b.pods, body)), OPERATOR),
    Route("GET", paths.POD_MEMORY, endpoints.pod_memory, OPERATOR),
    Route("POST", paths.VOLUMES_PACK, post(lambda b, body: volumes.pack(b.pods, body)), OPERATOR),
    Route("POST", paths.VOLUMES_UNPACK, post(lambda b, body: volumes.unpack(b.pods, body)), OPERATOR),
    Route("POST", paths.VOLUMES_RELEASE, post(lambda b, body: volumes.release(b.pods, body)), OPERATOR),
    Route("GET", paths.PROGRESS, endpoints.progress, OPERATOR, needs_worker=False),
    Route("GET", paths.MIGRATIONS, endpoints.held_migrations, OPERATOR),
    Route("DELETE", paths.MIGRATION, endpoints.delete_migration, OPERATOR),
    Route("DELETE", paths.CRIU_OPTIONS, endpoints.remove_criu_options, OPERATOR),
)


def resolve(method: str, path: str, table: tuple[Route, ...] = TABLE) -> tuple[Route, dict[str, str]]:
    """The route of a request and its path parameters; NotFound, or MethodNotAllowed for a path another method has."""
    allowed = False
    for route in table:
        match = route.pattern.fullmatch(path)
        if match:
            allowed = True
            if route.method == method:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
    if allowed:
        raise MethodNotAllowed(f"{method} not allowed on {path}")
    raise NotFound(f"no such endpoint: {method} {path}")
