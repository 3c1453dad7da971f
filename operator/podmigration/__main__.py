"""``python -m podmigration``: the operator, watching PodMigrations in all namespaces."""

from __future__ import annotations

import os

import kopf

from . import handlers  # noqa: F401  (registers the handlers)


def main() -> None:
    kopf.configure(verbose=bool(os.environ.get("PM_VERBOSE")))
    # standalone (no peering) is set in handlers.configure, for ``kopf run`` too.
    kopf.run(clusterwide=True,
             liveness_endpoint=os.environ.get("PM_LIVENESS_ENDPOINT") or None)


if __name__ == "__main__":
    main()
