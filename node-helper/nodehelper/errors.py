"""Exceptions that carry the HTTP status they should be answered with, so every module can fail precisely."""


class HelperError(Exception):
    """A failure with a specific message; `status` is the HTTP status the API answers with."""

    status = 500


class BadRequest(HelperError):
    status = 400


class NotFound(HelperError):
    status = 404


class MethodNotAllowed(HelperError):
    status = 405


class ChecksumMismatch(HelperError):
    status = 422


class UpstreamError(HelperError):
    """A peer helper, the kubelet or the container runtime failed."""

    status = 502
