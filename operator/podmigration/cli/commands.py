"""The verbs of `kubectl migrate` on one PodMigration or a list: migrate a pod, list, status, cancel."""

from __future__ import annotations

import argparse

from kubernetes.client.exceptions import ApiException

from .. import api
from ..api import phases
from ..api.types import Obj, phase_of, status_of
from ..clients.kube import Kube, api_message, status_code
from ..domain.preflight import check_in_cluster
from .around import PodsAround
from .follow import follow
from .output import age, emit, object_name, seconds, table, timings
from .terminal import EXIT_FAILED, EXIT_OK, Terminal, UsageError


def server_refusal(kube: Kube, args: argparse.Namespace) -> str | None:
    """The API server's answer to this migration sent as a dry run (admission webhooks and validation included,
    under the requester's rights): its refusal, or None when it would be created."""
    try:
        kube.create_migration(args.namespace, _body(args), dry_run=True)
    except ApiException as exc:
        if status_code(exc) in (400, 403, 422):
            return api_message(exc)
        raise
    return None


def do_dry_run(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    if args.dry_run == "server":
        refused = server_refusal(kube, args)
        if refused:
            print(f"pod {args.namespace}/{args.pod} cannot migrate: the API server refuses it:", file=term.out)
            print(f"  {refused}", file=term.out)
            return EXIT_FAILED
    spec = {"podName": args.pod, "targetNode": args.target}
    around = PodsAround(kube)
    _, plan = check_in_cluster(kube, spec, args.namespace, args.helper_namespace, around=around)
    if plan.ok:
        print(
            f"pod {args.namespace}/{args.pod} can migrate from {plan.source_node} to {plan.target_node}", file=term.out
        )
    else:
        print(f"pod {args.namespace}/{args.pod} cannot migrate:", file=term.out)
        for refusal in plan.refusals:
            print(f"  {refusal.reason}: {refusal.message}", file=term.out)
    if caveat := around.caveat():
        print(caveat, file=term.out)
    return EXIT_OK if plan.ok else EXIT_FAILED


def migration_body(
    pod: str, namespace: str, target: str | None, timeout: int, *, compression: str = "zstd", keep_source: bool = False
) -> Obj:
    spec: Obj = {"podName": pod, "timeoutSeconds": timeout, "compression": compression, "keepSource": keep_source}
    if target:
        spec["targetNode"] = target
    prefix = pod[:52].rstrip("-.") + "-"
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"generateName": prefix, "namespace": namespace},
        "spec": spec,
    }


def _body(args: argparse.Namespace) -> Obj:
    return migration_body(
        args.pod, args.namespace, args.target, args.timeout, compression=args.compression, keep_source=args.keep_source
    )


def follow_up(kube: Kube, args: argparse.Namespace, term: Terminal, name: str) -> int:
    """Follow to the end; with -o the lines go to stderr and stdout gets only the final object."""
    code, last = follow(kube, args.namespace, name, term, out=term.err if args.output else term.out)
    if args.output and last is not None:
        emit([last], args.output, term.out, single=True)
    return code


def do_migrate(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    if args.dry_run != "none":
        return do_dry_run(kube, args, term)
    created = kube.create_migration(args.namespace, _body(args))
    name = args.name = created["metadata"]["name"]  # what Ctrl-C names to follow it again
    target = args.target or "a node the operator picks"
    print(
        f"{object_name(created)} created: {args.namespace}/{args.pod} -> {target}",
        file=term.err if args.output else term.out,
    )
    if args.no_wait:
        if args.output:
            emit([created], args.output, term.out, single=True)
        return EXIT_OK
    return follow_up(kube, args, term, name)


def _row(item: Obj, all_namespaces: bool, term: Terminal) -> list[str]:
    status = item.get("status") or {}
    row = [
        item["metadata"]["name"],
        item["spec"]["podName"],
        status.get("sourceNode") or "-",
        status.get("targetNode") or item["spec"].get("targetNode") or "-",
        status.get("phase") or "-",
        seconds((status.get("durations") or {}).get("downtime")),
        age(item["metadata"].get("creationTimestamp"), term.now()),
    ]
    return ([item["metadata"].get("namespace", "")] if all_namespaces else []) + row


def do_list(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    namespace = None if args.all_namespaces else args.namespace
    items = sorted(
        kube.list_migrations(namespace), key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"])
    )
    if args.output:
        emit(items, args.output, term.out, single=False)
    elif not items and not args.watch:
        print("No PodMigrations found.", file=term.out)
    else:
        header = ["NAME", "POD", "SOURCE", "TARGET", "PHASE", "DOWNTIME", "AGE"]
        print(
            table(
                [(["NAMESPACE"] if args.all_namespaces else []) + header]
                + [_row(i, args.all_namespaces, term) for i in items]
            ),
            file=term.out,
        )
    if args.watch:
        watch_list(kube, args, term, {_key(i): _seen(i) for i in items})
    return EXIT_OK


def _key(item: Obj) -> tuple[str, str]:
    return item["metadata"].get("namespace", ""), item["metadata"]["name"]


def _seen(item: Obj) -> tuple[object, ...]:
    status = item.get("status") or {}
    return status.get("phase"), status.get("targetNode"), (status.get("durations") or {}).get("downtime")


def watch_list(kube: Kube, args: argparse.Namespace, term: Terminal, seen: dict[tuple[str, str], object]) -> None:
    """As `kubectl get -w`: a row for each migration that appears or changes phase, until Ctrl-C."""
    namespace = None if args.all_namespaces else args.namespace
    while True:
        term.sleep(1.0)
        for item in kube.list_migrations(namespace):
            if seen.get(_key(item)) != _seen(item):
                seen[_key(item)] = _seen(item)
                if args.output:
                    emit([item], args.output, term.out, single=True)
                else:
                    print(table([_row(item, args.all_namespaces, term)]), file=term.out, flush=True)


def find(kube: Kube, namespace: str, name: str, *, under_way: bool) -> Obj:
    """A PodMigration by its name, else the newest migration of the pod of that name (only one under way, when
    `under_way`: several are ambiguous)."""
    migration = kube.get_migration(namespace, name)
    if migration is not None:
        return migration
    of_pod = sorted(
        (m for m in kube.list_migrations(namespace) if m["spec"]["podName"] == name),
        key=lambda m: m["metadata"].get("creationTimestamp") or "",
    )
    if under_way:
        of_pod = [m for m in of_pod if not phases.is_terminal(phase_of(m))]
        if len(of_pod) > 1:
            names = ", ".join(m["metadata"]["name"] for m in of_pod)
            raise UsageError(f"pod {namespace}/{name} has several migrations under way ({names}): name one")
    if of_pod:
        return of_pod[-1]
    what = "under way " if under_way else ""
    raise UsageError(f"PodMigration {namespace}/{name} not found, nor a migration {what}of a pod {name}")


def do_status(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    migration = find(kube, args.namespace, args.name, under_way=False)
    name = migration["metadata"]["name"]
    if args.watch:
        return follow_up(kube, args, term, name)
    status = status_of(migration)
    code = EXIT_FAILED if status.get("phase") in (phases.FAILED, phases.CANCELLED) else EXIT_OK
    if args.output:
        emit([migration], args.output, term.out, single=True)
        return code
    spec = migration["spec"]
    lines = [
        f"Name:       {args.namespace}/{name}",
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
    return code


def do_cancel(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    migration = find(kube, args.namespace, args.name, under_way=True)
    name = migration["metadata"]["name"]
    phase = phase_of(migration)
    if phases.is_terminal(phase):
        print(f"PodMigration {name} already ended: {phase}", file=term.err)
        return EXIT_FAILED
    patched = kube.patch_migration(args.namespace, name, {"metadata": {"annotations": {api.CANCEL_ANNOTATION: "true"}}})
    if not phases.can_roll_back(phase):
        print(f"PodMigration {name} is {phase}, past the point of no return: it will complete", file=term.err)
        return EXIT_FAILED
    if args.output:
        emit([patched], args.output, term.out, single=True)
    else:
        print(
            f"cancel requested for PodMigration {name} (phase {phase or phases.PENDING}); the operator rolls it back",
            file=term.out,
        )
    return EXIT_OK
