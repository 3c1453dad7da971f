"""`kubectl migrate --version`: this client's version and the operator's, with a warning when they differ."""

from __future__ import annotations

import argparse
from importlib import metadata

from ..clients.kube import Kube
from .terminal import EXIT_OK, Terminal

#: Label the chart puts on the operator's pods (app.kubernetes.io/version = the chart's appVersion).
OPERATOR_SELECTOR = "app.kubernetes.io/name=podmigration-operator"
VERSION_LABEL = "app.kubernetes.io/version"


def client_version() -> str:
    try:
        return metadata.version("podmigration")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def do_version(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    """The operator's version (main printed the client's before connecting, so it shows without a cluster too)."""
    mine = client_version()
    pods = kube.list_pods(args.operator_namespace, OPERATOR_SELECTOR)
    found = sorted({(p["metadata"].get("labels") or {}).get(VERSION_LABEL, "unknown") for p in pods})
    if not found:
        print(f"Operator Version: not found (no operator pod in namespace {args.operator_namespace})", file=term.out)
        return EXIT_OK
    print(f"Operator Version: {', '.join(found)}", file=term.out)
    if found != [mine]:
        print(
            f"WARNING: version difference between client ({mine}) and operator ({', '.join(found)}) "
            "exceeds the supported skew: use the same release of both",
            file=term.err,
        )
    return EXIT_OK
