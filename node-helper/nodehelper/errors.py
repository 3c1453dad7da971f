"""Exceptions that carry the HTTP status they should be answered with, so every module can fail precisely."""

from collections.abc import Mapping


class HelperError(Exception):
    """A failure with a specific message; `status` is the HTTP status the API answers with."""

    status = 500
    #: Extra response headers the status calls for (e.g. Retry-After).
    headers: Mapping[str, str] = {}


class BadRequest(HelperError):
    status = 400


class Forbidden(HelperError):
    """The caller's certificate is valid but its identity may not call this (or has no grant for it)."""

    status = 403


class NotFound(HelperError):
    status = 404


class MethodNotAllowed(HelperError):
    status = 405


class Conflict(HelperError):
    """Archives are write-once: an id that exists is never written again."""

    status = 409


class ArchiveTooLarge(HelperError):
    status = 413


class ChecksumMismatch(HelperError):
    status = 422


class UpstreamError(HelperError):
    """A peer helper, the kubelet or the container runtime failed."""

    status = 502


class Busy(HelperError):
    """Every worker slot is taken: come back later rather than queue behind transfers that take minutes."""

    status = 503
    retry_after_seconds = 5
    headers = {"Retry-After": str(retry_after_seconds)}


class InsufficientStorage(HelperError):
    status = 507
