"""`kubectl migrate`: the table of commands, connecting as the user (or as whom --as names), and the exits."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import api
from ..clients.kube import Kube, api_message, status_code
from . import args as cli_args
from .check import check_arguments, do_check
from .commands import do_cancel, do_list, do_migrate, do_status
from .drain import drain
from .terminal import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Terminal, UsageError
from .version import client_version, do_version

Run = Callable[[Kube, argparse.Namespace, Terminal], int]


#: name -> (help, adds its arguments, runs it). A new subcommand is one more row.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Run]] = {
    "pod": ("live-migrate a pod (`kubectl migrate POD` for short)", cli_args.pod_arguments, do_migrate),
    "list": ("list PodMigrations", cli_args.list_arguments, do_list),
    "status": ("show one PodMigration, or follow it with -w", cli_args.status_arguments, do_status),
    "cancel": (
        "stop a migration and roll back (only before Finalizing); by its name or its pod's",
        cli_args.cancel_arguments,
        do_cancel,
    ),
    "drain": (
        "cordon a node and empty it: migrate the pods that can move, evict the others (kubectl drain with "
        "live migration)",
        cli_args.drain_arguments,
        drain,
    ),
    "version": ("print the client's and the operator's versions", cli_args.version_arguments, do_version),
    "check": (
        "whether nodes can take part in a migration (runtime, kubelet, node-helper), with what to fix",
        check_arguments,
        do_check,
    ),
}


def parser() -> argparse.ArgumentParser:
    return cli_args.build_parser({name: (text, add) for name, (text, add, _) in COMMANDS.items()})


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Bare `kubectl migrate` prints the help with examples (exit 0), as kubectl does."""
    full = parser()
    if not argv:
        full.print_help()
        raise SystemExit(EXIT_OK)
    argv = list(argv)
    if "--version" in argv[: argv.index("--") if "--" in argv else None]:
        argv = ["version", *[word for word in argv if word != "--version"]]
    return full.parse_args(cli_args.shorthand(argv, COMMANDS))


def _kubeconfig_path(flag: str | None) -> str | None:
    """--kubeconfig, else $KUBECONFIG as it is now (the client reads it only once, at import)."""
    return flag or os.environ.get("KUBECONFIG") or None


def default_namespace(context: str | None, kubeconfig: str | None) -> str:
    from kubernetes import config as k8s_config

    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=_kubeconfig_path(kubeconfig))
    except (k8s_config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace") or "default"


def connect(args: argparse.Namespace) -> Kube:
    """Normal kubeconfig resolution (--kubeconfig, $KUBECONFIG, ~/.kube/config); in-cluster as a fallback.
    --as/--as-group impersonate, as kubectl does (the API server checks the caller may)."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    try:
        k8s_config.load_kube_config(config_file=_kubeconfig_path(args.kubeconfig), context=args.context)
    except (k8s_config.ConfigException, OSError) as exc:
        if args.kubeconfig or args.context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise UsageError(f"cannot load kubeconfig: {exc}") from exc
        k8s_config.load_incluster_config()
    client = k8s_client.ApiClient()
    if args.as_groups and not args.as_user:
        raise UsageError("--as-group needs --as")
    if len(args.as_groups) > 1:
        raise UsageError("only one --as-group is supported (the Python client sends one value per header)")
    if args.as_user:
        client.set_default_header("Impersonate-User", args.as_user)
    for group in args.as_groups:
        client.set_default_header("Impersonate-Group", group)
    return Kube(client)


def _interrupted(args: argparse.Namespace, term: Terminal) -> int:
    """Ctrl-C ends the CLI, never the migration: say so and how to follow it again."""
    print(file=term.err)
    if args.command in ("pod", "status"):
        where = f" -n {args.namespace}" if args.namespace else ""
        what = getattr(args, "name", None) or args.pod  # the PodMigration once created, else its pod
        print(
            f"interrupted: the migration goes on; follow it with: kubectl migrate status {what}{where} -w",
            file=term.err,
        )
    elif args.command == "drain":
        print(
            "interrupted: the drain stops here; migrations it started go on (kubectl migrate list -A -w); "
            f"node {args.node} stays cordoned",
            file=term.err,
        )
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None, *, kube: Kube | None = None, term: Terminal | None = None) -> int:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
    from urllib3.exceptions import HTTPError

    term = term or Terminal()
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "version":
        print(f"Client Version: {client_version()}", file=term.out)
    try:
        if getattr(args, "namespace", None) is None and args.command not in ("drain", "version"):
            args.namespace = default_namespace(args.context, args.kubeconfig)
        return COMMANDS[args.command][2](kube or connect(args), args, term)
    except KeyboardInterrupt:
        return _interrupted(args, term)
    except UsageError as exc:
        print(f"error: {exc}", file=term.err)
        return EXIT_USAGE
    except ResourceNotFoundError:
        print(f"error: the {api.KIND} API ({api.API_VERSION}) is not installed in this cluster", file=term.err)
        return EXIT_FAILED
    except HTTPError as exc:
        print(f"error: cannot reach the Kubernetes API server: {exc}", file=term.err)
        return EXIT_FAILED
    except Exception as exc:
        code = status_code(exc)
        if code is None:
            raise
        print(f"error: {api_message(exc)}", file=term.err)
        return EXIT_USAGE if code in (400, 422) else EXIT_FAILED
