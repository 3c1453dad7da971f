"""The command line of `kubectl migrate`: one parser with a subcommand per verb (the table is entry.COMMANDS), and
the shorthand `kubectl migrate POD ...` for `kubectl migrate pod POD ...`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence

import durationpy

from .output import OUTPUT_FORMATS

EXAMPLES = """examples:
  kubectl migrate web-0 --to worker-2        # live-migrate pod web-0 and follow it
  kubectl migrate pod list --timeout 10m     # a pod whose name is also a command (or: kubectl migrate -- list)
  kubectl migrate web-0 --no-wait -o name    # create the PodMigration, print its name, return
  kubectl migrate status web-0-x7k2p -w      # follow a migration again (after --no-wait or Ctrl-C)
  kubectl migrate list -A -w                 # every migration, and each change as it happens
  kubectl migrate cancel web-0               # roll back the migration of pod web-0
  kubectl migrate drain worker-1 --ignore-daemonsets --delete-emptydir-data
  kubectl migrate --version                  # client and operator versions

Durations take kubectl's form (90s, 5m, 1h) or whole seconds.
Exit status: 0 success, 1 the migration failed / was cancelled / is blocked, 2 bad usage, 130 interrupted."""

#: Options of the shorthand form that take a value (to find the pod name among them).
_VALUED = frozenset(
    {
        "-n",
        "--namespace",
        "--kubeconfig",
        "--context",
        "--as",
        "--as-group",
        "-o",
        "--output",
        "--to",
        "--timeout",
        "--compression",
        "--helper-namespace",
    }
)


def duration(low: int, high: int) -> Callable[[str], int]:
    """A parser of kubectl-style durations (`90s`, `5m`, `1h30m`) or whole seconds, kept within low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text) if text.isdigit() else durationpy.from_str(text).total_seconds()
        except durationpy.DurationError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 90s, 5m, 1h)") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low}s..{high // 60}m")
        return int(value)

    return parse


def count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="act as this user (impersonation, as kubectl --as), e.g. to check what it may do",
    )
    parser.add_argument(
        "--as-group",
        dest="as_groups",
        action="append",
        default=[],
        metavar="GROUP",
        help="act as this group (repeatable; needs --as)",
    )


def common(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)")
    if output:
        parser.add_argument(
            "-o",
            "--output",
            choices=OUTPUT_FORMATS,
            help="print the PodMigration(s) as json, yaml or name instead of text",
        )
    connection(parser)


def pod_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", help="name of the running pod to migrate")
    parser.add_argument("--to", dest="target", metavar="NODE", help="target node (default: the operator picks one)")
    parser.add_argument(
        "--timeout",
        type=duration(10, 3600),
        default=300,
        metavar="DURATION",
        help="time before the migration rolls back (10s..60m, default 5m)",
    )
    parser.add_argument(
        "--compression",
        choices=("zstd", "none"),
        default="zstd",
        help="compression of archives on the wire (default zstd)",
    )
    parser.add_argument(
        "--keep-source", action="store_true", help="keep the source pod running after success (makes a copy)"
    )
    parser.add_argument("--no-wait", action="store_true", help="create the PodMigration and return")
    parser.add_argument(
        "--dry-run",
        nargs="?",
        const="server",
        choices=("none", "client", "server"),
        default="none",
        help="create nothing; print whether the pod can migrate and what would block it. server (the default with "
        "no value): the API server admits the PodMigration as a dry run, with your rights (its preflight webhook "
        "answers), then the checks it leaves to Preparing run here; client: only the checks run here",
    )
    parser.add_argument(
        "--helper-namespace",
        default=os.environ.get("PM_HELPER_NAMESPACE", "podmigration-system"),
        help="namespace of the node-helper pods, for --dry-run (default podmigration-system)",
    )
    common(parser)


def list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="list in every namespace")
    parser.add_argument("-w", "--watch", action="store_true", help="after the list, print each change (Ctrl-C ends)")
    common(parser)


def status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="PodMigration name")
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="follow it to its end with phase lines and progress (exit status as kubectl migrate POD)",
    )
    common(parser)


def cancel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="PodMigration name, or the name of a pod with a migration under way")
    common(parser)


def drain_arguments(drain: argparse.ArgumentParser) -> None:
    drain.add_argument("node", help="node to empty")
    drain.add_argument(
        "--to",
        dest="target",
        metavar="NODE",
        help="target node of every migration (default: the operator picks one per pod)",
    )
    drain.add_argument(
        "--parallel",
        type=count,
        default=2,
        metavar="N",
        help="migrations at a time (default 2, as KubeVirt's parallelOutboundMigrationsPerNode)",
    )
    drain.add_argument(
        "--timeout",
        type=duration(10, 3600),
        default=600,
        metavar="DURATION",
        help="time until the drain gives up on what PodDisruptionBudgets hold back; migrations "
        "roll back by then too (10s..60m, default 10m)",
    )
    drain.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        choices=("none", "client", "server"),
        default="none",
        help="print the plan; cordon, migrate and evict nothing (client, the default with no value); "
        "server: also send each migration and eviction to the API server as a dry run, so its "
        "admission and PodDisruptionBudgets answer too",
    )
    drain.add_argument("--no-evict", action="store_true", help="leave the pods that cannot migrate on the node")
    drain.add_argument(
        "--force",
        action="store_true",
        help="also evict unmanaged pods (no controller to recreate them) that cannot migrate (else "
        "they stay on the node, as with kubectl drain)",
    )
    drain.add_argument(
        "--delete-emptydir-data",
        action="store_true",
        help="evict pods that cannot migrate even when they have emptyDir data, which is lost (else "
        "they stay on the node, as with kubectl drain)",
    )
    drain.add_argument(
        "--pod-selector",
        metavar="SELECTOR",
        help="only the pods matching this label selector (as kubectl drain --pod-selector)",
    )
    drain.add_argument(
        "--grace-period",
        type=int,
        metavar="SECONDS",
        help="termination grace period of evicted pods (default: each pod's own)",
    )
    drain.add_argument(
        "--ignore-daemonsets",
        action="store_true",
        help="leave DaemonSet pods on the node (else the drain refuses, as kubectl drain does)",
    )
    drain.add_argument(
        "--operator-namespace",
        default="podmigration-system",
        metavar="NS",
        help="namespace of the operator and its node-helpers: its pods are evicted, never migrated "
        "(default podmigration-system)",
    )
    connection(drain)
    drain.set_defaults(namespace=None)


def version_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--operator-namespace",
        default="podmigration-system",
        metavar="NS",
        help="namespace of the operator (default podmigration-system)",
    )
    connection(parser)
    parser.set_defaults(namespace=None)


def build_parser(
    commands: Mapping[str, tuple[str, Callable[[argparse.ArgumentParser], None]]],
) -> argparse.ArgumentParser:
    """`commands`: name -> (help, adds its arguments)."""
    parser = argparse.ArgumentParser(
        prog="kubectl migrate",
        description="Live-migrate running pods between nodes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="store_const",
        dest="command",
        const="version",
        help="print the client's and the operator's versions",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, add_arguments) in commands.items():
        add_arguments(sub.add_parser(name, help=text, description=text))
    return parser


def shorthand(argv: Sequence[str], commands: Mapping[str, object]) -> list[str]:
    """`kubectl migrate [OPTIONS] POD ...` means `kubectl migrate pod POD ...`; a command named after options is
    moved first; `--` makes what follows a pod name, whatever it is."""
    argv = list(argv)
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return ["pod", *argv[:index], *argv[index + 1 :]] if index + 1 < len(argv) else argv
        if not word.startswith("-"):
            if word in commands:
                return [word, *argv[:index], *argv[index + 1 :]]
            return ["pod", *argv]
        index += 2 if word in _VALUED else 1
    return argv
