"""``kubectl migrate``: create PodMigrations and follow them.

    kubectl migrate POD [--to NODE] [-n NS] [--timeout S] [--no-wait] [--dry-run] [--keep-source]
    kubectl migrate list [-n NS | -A]
    kubectl migrate status NAME [-n NS]
    kubectl migrate cancel NAME [-n NS]
    kubectl migrate drain NODE [--to NODE] [--parallel N] [--timeout S] [--dry-run] [--no-evict] [--force]
                          [--ignore-daemonsets]

Exit status: 0 success, 1 the migration failed / was cancelled / is blocked, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from . import api, phases
from .kube import Kube, api_message, status_code
from .preflight import check_in_cluster
from .progressview import ProgressView
from .status import parse_time

Obj = dict[str, Any]

SUBCOMMANDS = ("list", "status", "cancel", "drain")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: How long to wait past spec.timeoutSeconds for a terminal phase before blaming the operator.
OPERATOR_GRACE_SECONDS = 120
DURATION_ROWS = ("checkpoint", "transfer", "restore", "downtime", "total")


class UsageError(Exception):
    """Bad input that the user can fix; exit status 2."""


@dataclass
class Terminal:
    """Where output goes and how time passes; tests replace it."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)")
    _connection(parser)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context to use")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 10 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} is outside 10..3600 seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def migrate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl migrate", description="Live-migrate a running pod to another node.",
        epilog="Other commands: kubectl migrate list|status NAME|cancel NAME|drain NODE (see kubectl migrate list --help).")
    parser.add_argument("pod", help="name of the running pod to migrate")
    parser.add_argument("--to", dest="target", metavar="NODE", help="target node (default: the operator picks one)")
    parser.add_argument("--timeout", type=_positive_int, default=300, metavar="S",
                        help="seconds before the migration rolls back (10..3600, default 300)")
    parser.add_argument("--compression", choices=("zstd", "none"), default="zstd",
                        help="compression of archives on the wire (default zstd)")
    parser.add_argument("--keep-source", action="store_true",
                        help="keep the source pod running after success (makes a copy)")
    parser.add_argument("--no-wait", action="store_true", help="create the PodMigration and return")
    parser.add_argument("--dry-run", action="store_true",
                        help="only run the preflight checks locally and print what would block; create nothing")
    parser.add_argument("--helper-namespace", default=os.environ.get("PM_HELPER_NAMESPACE", "podmigration-system"),
                        help="namespace of the node-helper pods, for --dry-run (default podmigration-system)")
    _common(parser)
    return parser


def command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl migrate", description="Inspect and control PodMigrations.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list PodMigrations")
    _common(listing)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="list in every namespace")
    for name, text in (("status", "show one PodMigration in detail"),
                       ("cancel", "stop a migration and roll back (only before Finalizing)")):
        command = sub.add_parser(name, help=text)
        command.add_argument("name", help="PodMigration name")
        _common(command)
    _drain_arguments(sub.add_parser("drain", help="cordon a node and empty it: migrate the pods that can move, "
                                                   "evict the others, unmanaged ones with --force (kubectl drain "
                                                   "with live migration)"))
    return parser


def _drain_arguments(drain: argparse.ArgumentParser) -> None:
    drain.add_argument("node", help="node to empty")
    drain.add_argument("--to", dest="target", metavar="NODE", help="target node of every migration "
                                                                   "(default: the operator picks one per pod)")
    drain.add_argument("--parallel", type=_count, default=2, metavar="N",
                       help="migrations at a time (default 2, as KubeVirt's parallelOutboundMigrationsPerNode)")
    drain.add_argument("--timeout", type=_positive_int, default=600, metavar="S",
                       help="seconds until the drain gives up on what PodDisruptionBudgets hold back; migrations "
                            "roll back by then too (10..3600, default 600)")
    drain.add_argument("--dry-run", action="store_true", help="print the plan; cordon, migrate and evict nothing")
    drain.add_argument("--no-evict", action="store_true", help="leave the pods that cannot migrate on the node")
    drain.add_argument("--force", action="store_true",
                       help="also evict unmanaged pods (no controller to recreate them) that cannot migrate (else "
                            "they stay on the node, as with kubectl drain)")
    drain.add_argument("--ignore-daemonsets", action="store_true",
                       help="leave DaemonSet pods on the node (else the drain refuses, as kubectl drain does)")
    drain.add_argument("--operator-namespace", default="podmigration-system", metavar="NS",
                       help="namespace of the operator and its node-helpers: its pods are evicted, never migrated "
                            "(default podmigration-system)")
    _connection(drain)
    drain.set_defaults(namespace=None)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Subcommands first; anything else is a pod name (argparse cannot mix the two forms)."""
    if argv and argv[0] in SUBCOMMANDS:
        return command_parser().parse_args(argv)
    args = migrate_parser().parse_args(argv)
    args.command = "migrate"
    return args


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


# -- formatting ---------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return "-"
    seconds = int((now - parse_time(created)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def timings(status: Obj) -> str:
    """The durations and sizes of a finished migration, as a small table."""
    durations = status.get("durations") or {}
    rows = [["STAGE", "SECONDS"]] + [[name, _seconds(durations.get(name))] for name in DURATION_ROWS]
    text = _table(rows)
    text += (f"\ncheckpoint size {_size(status.get('checkpointBytes'))}, "
             f"sent {_size(status.get('transferredBytes'))}")
    for container in status.get("containers") or []:
        criu = container.get("criu") or {}
        if criu:
            frozen = criu.get("frozenTime")
            text += (f"\ncontainer {container['name']}: frozen {frozen / 1e6:.3f}s" if frozen is not None
                     else f"\ncontainer {container['name']}:")
            text += f", {criu.get('pagesWritten', '-')} pages written"
    for volume in status.get("volumes") or []:
        text += (f"\nvolume {volume['name']} ({volume.get('medium', 'Disk')}): {_size(volume.get('bytes'))}, "
                 f"copied in {_seconds(volume.get('packSeconds'))}, sent in {_seconds(volume.get('transferSeconds'))}, "
                 f"in place in {_seconds(volume.get('unpackSeconds'))}")
    for warning in status.get("warnings") or []:
        text += f"\nwarning: {warning}"
    return text


# -- commands -----------------------------------------------------------------------------------------


def do_dry_run(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    spec = {"podName": args.pod, "targetNode": args.target}
    _, plan = check_in_cluster(kube, spec, args.namespace, args.helper_namespace)
    if plan.ok:
        print(f"pod {args.namespace}/{args.pod} can migrate from {plan.source_node} to {plan.target_node}",
              file=term.out)
        return EXIT_OK
    print(f"pod {args.namespace}/{args.pod} cannot migrate:", file=term.out)
    for refusal in plan.refusals:
        print(f"  {refusal.reason}: {refusal.message}", file=term.out)
    return EXIT_FAILED


def migration_body(args: argparse.Namespace) -> Obj:
    spec: Obj = {"podName": args.pod, "timeoutSeconds": args.timeout, "compression": args.compression,
                 "keepSource": args.keep_source}
    if args.target:
        spec["targetNode"] = args.target
    prefix = args.pod[:52].rstrip("-.") + "-"
    return {"apiVersion": api.API_VERSION, "kind": api.KIND,
            "metadata": {"generateName": prefix, "namespace": args.namespace}, "spec": spec}


def _offset(transition: Obj, origin: Obj) -> float:
    """Seconds between two phaseTransitions entries."""
    return (parse_time(transition["time"]) - parse_time(origin["time"])).total_seconds()


def follow(kube: Kube, namespace: str, name: str, timeout: int, term: Terminal) -> int:
    """Print one line per phase the migration went through (from status.phaseTransitions, so a phase shorter than
    the poll interval is shown too) until it ends; the exit status tells how."""
    started = term.clock()
    give_up = started + timeout + OPERATOR_GRACE_SECONDS
    shown = 0
    view = ProgressView(term.out)
    while True:
        migration = kube.get_migration(namespace, name)
        if migration is None:
            view.end_line()
            print(f"PodMigration {namespace}/{name} was deleted", file=term.err)
            return EXIT_FAILED
        status = migration.get("status") or {}
        phase = status.get("phase")
        transitions = status.get("phaseTransitions") or []
        if len(transitions) > shown:
            view.end_line()
        for index in range(shown, len(transitions)):
            latest = index == len(transitions) - 1
            print(f"{_offset(transitions[index], transitions[0]):7.1f}s  {transitions[index]['phase']:<13}  "
                  f"{status.get('message', '') if latest else ''}".rstrip(), file=term.out)
        shown = len(transitions)
        if phase == phases.TRANSFERRING:
            view.update(status.get("progress"))
        if phases.is_terminal(phase):
            print(timings(status), file=term.out)
            if phase == phases.SUCCEEDED:
                print(f"pod {namespace}/{migration['spec']['podName']} now runs as {status.get('targetPod')} "
                      f"on {status.get('targetNode')}", file=term.out)
                return EXIT_OK
            print(f"migration {phase.lower()}: {status.get('reason')}: {status.get('message')}", file=term.err)
            return EXIT_FAILED
        if term.clock() > give_up:
            view.end_line()
            print(f"PodMigration {namespace}/{name} is still {phase or 'not started'} after {timeout}s: "
                  "is the podmigration operator running?", file=term.err)
            return EXIT_FAILED
        term.sleep(0.5)


def do_migrate(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    if args.dry_run:
        return do_dry_run(kube, args, term)
    created = kube.create_migration(args.namespace, migration_body(args))
    name = created["metadata"]["name"]
    target = args.target or "a node the operator picks"
    print(f"podmigration.{api.GROUP}/{name} created: {args.namespace}/{args.pod} -> {target}", file=term.out)
    if args.no_wait:
        return EXIT_OK
    return follow(kube, args.namespace, name, args.timeout, term)


def do_list(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    items = kube.list_migrations(None if args.all_namespaces else args.namespace)
    if not items:
        print("No PodMigrations found.", file=term.out)
        return EXIT_OK
    now = term.now()
    header = ["NAME", "POD", "SOURCE", "TARGET", "PHASE", "DOWNTIME", "AGE"]
    rows = [(["NAMESPACE"] if args.all_namespaces else []) + header]
    for item in sorted(items, key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"])):
        status = item.get("status") or {}
        row = [item["metadata"]["name"], item["spec"]["podName"], status.get("sourceNode") or "-",
               status.get("targetNode") or item["spec"].get("targetNode") or "-", status.get("phase") or "-",
               _seconds((status.get("durations") or {}).get("downtime")),
               _age(item["metadata"].get("creationTimestamp"), now)]
        rows.append(([item["metadata"].get("namespace", "")] if args.all_namespaces else []) + row)
    print(_table(rows), file=term.out)
    return EXIT_OK


def _require(kube: Kube, args: argparse.Namespace) -> Obj:
    migration = kube.get_migration(args.namespace, args.name)
    if migration is None:
        raise UsageError(f"PodMigration {args.namespace}/{args.name} not found")
    return migration


def do_status(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    migration = _require(kube, args)
    status = migration.get("status") or {}
    spec = migration["spec"]
    lines = [
        f"Name:       {args.namespace}/{args.name}",
        f"Pod:        {spec['podName']}",
        f"Source:     {status.get('sourceNode') or '-'}",
        f"Target:     {status.get('targetNode') or spec.get('targetNode') or '-'}",
        f"New pod:    {status.get('targetPod') or '-'}",
        f"Phase:      {status.get('phase') or '-'}",
        f"Reason:     {status.get('reason') or '-'}",
        f"Message:    {status.get('message') or '-'}",
        "Transitions:",
    ]
    lines += [f"  {t['time']}  {t['phase']}" for t in status.get("phaseTransitions") or []]
    print("\n".join(lines), file=term.out)
    print(timings(status), file=term.out)
    return EXIT_FAILED if status.get("phase") in (phases.FAILED, phases.CANCELLED) else EXIT_OK


def do_cancel(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    migration = _require(kube, args)
    phase = (migration.get("status") or {}).get("phase")
    if phases.is_terminal(phase):
        print(f"PodMigration {args.name} already ended: {phase}", file=term.err)
        return EXIT_FAILED
    kube.patch_migration(args.namespace, args.name, {"metadata": {"annotations": {api.CANCEL_ANNOTATION: "true"}}})
    if phases.can_roll_back(phase):
        print(f"cancel requested for PodMigration {args.name} (phase {phase or phases.PENDING}); "
              "the operator rolls it back", file=term.out)
        return EXIT_OK
    print(f"PodMigration {args.name} is {phase}, past the point of no return: it will complete", file=term.err)
    return EXIT_FAILED


def do_drain(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    from .drain import drain  # here, not at the top: drain builds on this module

    return drain(kube, args, term)


COMMANDS: dict[str, Callable[[Kube, argparse.Namespace, Terminal], int]] = {
    "migrate": do_migrate, "list": do_list, "status": do_status, "cancel": do_cancel, "drain": do_drain,
}


def connect(args: argparse.Namespace) -> Kube:
    """Normal kubeconfig resolution (--kubeconfig, $KUBECONFIG, ~/.kube/config); in-cluster as a fallback."""
    from kubernetes import config as k8s_config

    try:
        k8s_config.load_kube_config(config_file=_kubeconfig_path(args.kubeconfig), context=args.context)
    except (k8s_config.ConfigException, OSError) as exc:
        if args.kubeconfig or args.context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise UsageError(f"cannot load kubeconfig: {exc}") from exc
        k8s_config.load_incluster_config()
    return Kube()


def main(argv: Sequence[str] | None = None, *, kube: Kube | None = None, term: Terminal | None = None) -> int:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
    from urllib3.exceptions import HTTPError

    term = term or Terminal()
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        args.namespace = args.namespace or default_namespace(args.context, args.kubeconfig)
        return COMMANDS[args.command](kube or connect(args), args, term)
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


if __name__ == "__main__":
    sys.exit(main())
