"""What an endpoint sees of one request (exchange) and of the server (backend): the seam between the HTTP plumbing
(handler.py) and the endpoints (endpoints.py, routes.py), so neither imports the other."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from nodehelper.http.authz import Caller
from nodehelper.http.body import BodyReader
from nodehelper.services.helper import Helper
from nodehelper.services.nodefacts import NodeFacts
from nodehelper.services.pods import PodApi


class Backend(Protocol):
    """The objects behind the endpoints."""

    @property
    def helper(self) -> Helper: ...

    @property
    def pods(self) -> PodApi: ...

    @property
    def node_facts(self) -> NodeFacts | None:
        """What GET /v1/node answers."""

    @property
    def criu_config(self) -> Path | None:
        """The node's runc.conf whose managed block DELETE /v1/criu-options removes (at uninstall)."""


class Exchange(Protocol):
    """One request, and its answer."""

    @property
    def server(self) -> Backend: ...

    @property
    def caller(self) -> Caller: ...

    @property
    def body(self) -> BodyReader: ...

    def header(self, name: str) -> str | None: ...

    def param(self, name: str) -> str | None:
        """A query parameter (its first value)."""

    def json(self) -> dict[str, Any]:
        """The request body as a JSON object."""

    def send_json(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int:
        """Answers ``payload``; returns ``status``."""

    def send_stream(self, headers: Mapping[str, str], chunks: Iterable[bytes]) -> int:
        """Answers 200 with a chunked body; returns 200."""
