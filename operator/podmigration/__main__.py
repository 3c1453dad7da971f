"""``python -m podmigration``: the operator, watching PodMigrations in all namespaces."""

from __future__ import annotations

import os

import kopf

from . import handlers  # noqa: F401  (registers the handlers)
from .controller import logcontext


def main() -> None:
    json_logs = os.environ.get("PM_LOG_FORMAT") == "json"  # the chart's operator.logFormat
    kopf.configure(
        verbose=bool(os.environ.get("PM_VERBOSE")), log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL
    )
    logcontext.install(json_logs)
    # standalone (no peering) is set in handlers.configure, for ``kopf run`` too.
    kopf.run(clusterwide=True, liveness_endpoint=os.environ.get("PM_LIVENESS_ENDPOINT") or None)


if __name__ == "__main__":
    main()
