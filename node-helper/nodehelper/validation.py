"""Validation of every id, name and URL that reaches a path, a command line or a peer request."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from nodehelper.errors import BadRequest

_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,251}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Image references as CRI-O and skopeo accept them: name[:tag][@digest]; never an option (leading '-').
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,510}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def field(body: dict[str, Any], name: str) -> Any:
    """A required field of a JSON request body."""
    if name not in body:
        raise BadRequest(f"missing field {name!r}")
    return body[name]


def _check(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"invalid {what}: {value!r}")
    return value


def archive_id(value: object) -> str:
    """Archive ids ("<migration-uid>-<container>") and migration uids become file names: [a-z0-9-] only."""
    return _check(_ID, value, "id")


def pod_uid(value: object) -> str:
    return _check(_ID, value, "pod UID")


def namespace(value: object) -> str:
    return _check(_DNS_LABEL, value, "namespace")


def pod_name(value: object) -> str:
    return _check(_DNS_SUBDOMAIN, value, "pod name")


def container_name(value: object) -> str:
    return _check(_DNS_LABEL, value, "container name")


def volume_name(value: object) -> str:
    return _check(_DNS_LABEL, value, "volume name")


def image_ref(value: object) -> str:
    ref = _check(_IMAGE_REF, value, "image reference")
    if ".." in ref or "//" in ref:
        raise BadRequest(f"invalid image reference: {ref!r}")
    return ref


def sha256_hex(value: object) -> str:
    return _check(_SHA256, value.lower() if isinstance(value, str) else value, "sha256")


def byte_count(value: object, what: str) -> int:
    """A size in bytes in a JSON body: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"invalid {what}: {value!r} (a size in bytes)")
    return value


def header_byte_count(value: str, name: str) -> int:
    """A size in bytes in a header: decimal digits only."""
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise BadRequest(f"invalid {name} header: {value!r:.40} (a size in bytes)")
    return int(value)


def peer_url(value: object) -> tuple[str, int]:
    """A peer helper is addressed as https://HOST:PORT and nothing else, so no request can be redirected."""
    if not isinstance(value, str):
        raise BadRequest(f"invalid peer URL: {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"invalid peer URL {value!r}: {exc}") from None
    if (
        parts.scheme != "https"
        or not parts.hostname
        or port is None
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise BadRequest(f"invalid peer URL {value!r}: expected https://HOST:PORT")
    return parts.hostname, port


def node_name(value: object) -> str:
    """A Kubernetes node name (DNS subdomain): it becomes part of the peer identity a transfer requires."""
    return _check(_DNS_SUBDOMAIN, value, "node name")


def timeout_seconds(value: object, default: int, maximum: int = 3600) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise BadRequest(f"invalid timeoutSeconds: {value!r} (1..{maximum})")
    return value


def unix_time(value: object, what: str) -> float | None:
    """An optional point in time in a JSON body: seconds since the epoch (None when absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e11:
        raise BadRequest(f"invalid {what}: {value!r} (seconds since the epoch)")
    return float(value)
