"""``kubectl migrate drain NODE``: cordon a node and empty it, live-migrating the pods that can move.

The decisions are drainplan's; this module reads the cluster, carries the plan out and polls (one loop, no
threads: each pass starts what may start, follows what runs, then sleeps a second).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from ..api import phases
from ..api.types import status_of
from ..clients.kube import Kube, api_message, status_code
from ..domain.drainplan import (
    BLOCK,
    EVICT,
    EVICTED,
    FAILED,
    MIGRATE,
    Decision,
    Obj,
    Outcome,
    decide,
    drained,
    holding_back,
    migration_outcome,
    migration_timeout,
    plan_complete,
    settled,
    triage,
)
from ..domain.limits import QUEUE_FULL
from ..domain.preflight import check_in_cluster
from .around import PodsAround
from .commands import migration_body
from .output import table
from .terminal import EXIT_FAILED, EXIT_OK, OPERATOR_GRACE_SECONDS, Terminal, UsageError

POLL_SECONDS = 1.0


def read_plan(kube: Kube, args: argparse.Namespace, term: Terminal) -> list[Decision]:
    """Every pod of the node and what to do with it; candidates go through the operator's own preflight, all
    against one reading of the pods around the targets (the first candidate's)."""
    names = {n["metadata"]["name"] for n in kube.list_nodes()}
    for node in (args.node, args.target):
        if node and node not in names:
            raise UsageError(f"node {node} not found")
    if args.target == args.node:
        raise UsageError(f"--to {args.target} is the node being drained")
    plan = []
    around = PodsAround(kube)
    for pod in sorted(
        kube.list_node_pods(args.node, args.pod_selector),
        key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]),
    ):
        decision = triage(pod, args.operator_namespace, args.ignore_daemonsets)
        if decision is None:
            spec = {"podName": pod["metadata"]["name"], "targetNode": args.target}
            _, checked = check_in_cluster(
                kube, spec, pod["metadata"]["namespace"], args.operator_namespace, around=around
            )
            decision = decide(
                pod, checked, evict=not args.no_evict, force=args.force, delete_emptydir_data=args.delete_emptydir_data
            )
        plan.append(decision)
    if caveat := around.caveat():
        print(caveat, file=term.out)
    return plan


@dataclass
class Migrating:
    decision: Decision
    name: str  #: the PodMigration
    shown: int = 0  #: phaseTransitions already printed


class Drainer:
    """Carries out a plan on a cordoned node; ``run`` returns a summary row per pod."""

    def __init__(self, kube: Kube, args: argparse.Namespace, term: Terminal, plan: list[Decision]) -> None:
        self.kube, self.args, self.term = kube, args, term
        self.waiting = [d for d in plan if d.action == MIGRATE]
        self.to_evict = [d for d in plan if d.action == EVICT]
        self.migrating: list[Migrating] = []
        self.leaving: list[Decision] = []  # evicted, until the pod is gone
        self.notes: dict[str, str] = {}  # pod -> why it waits, printed when it changes
        self.outcomes = [settled(d) for d in plan if d.action not in (MIGRATE, EVICT)]

    def say(self, decision: Decision, text: str) -> None:
        print(f"  {decision.ref}  {text}".rstrip(), file=self.term.out)

    def note(self, decision: Decision, text: str) -> None:
        """Why a pod still waits; said once, not on every poll."""
        if self.notes.get(decision.ref) != text:
            self.notes[decision.ref] = text
            self.say(decision, text)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.to_evict or self.migrating or self.leaving)

    def run(self) -> list[Outcome]:
        deadline = self.term.clock() + self.args.timeout
        while self.busy:
            now = self.term.clock()
            if now < deadline:
                self.start_migrations(deadline - now)
                self.evict()
            else:
                self.give_up()
            self.follow(deadline + OPERATOR_GRACE_SECONDS)
            self.watch_leaving()
            if self.busy:
                self.term.sleep(POLL_SECONDS)
        return self.outcomes

    def start_migrations(self, remaining: float) -> None:
        """Up to --parallel at a time; a pod a PodDisruptionBudget holds back waits without taking a slot."""
        budgets: dict[str, list[Obj]] = {}
        for decision in list(self.waiting):
            if len(self.migrating) >= self.args.parallel:
                return
            if decision.namespace not in budgets:
                budgets[decision.namespace] = self.kube.list_disruption_budgets(decision.namespace)
            blocker = holding_back(decision.pod, budgets[decision.namespace], [m.decision.pod for m in self.migrating])
            if blocker:
                self.note(decision, f"held back by PodDisruptionBudget {blocker}")
                continue
            body = migration_body(decision.name, decision.namespace, self.args.target, migration_timeout(remaining))
            try:
                created = self.kube.create_migration(decision.namespace, body)
            except ApiException as exc:
                if f"{QUEUE_FULL}: " in api_message(exc):
                    # The namespace's queue is full (operator.limits.maxQueuedPerNamespace): room comes as its
                    # migrations end, so the pod waits for it as for a budget, until --timeout.
                    self.note(decision, f"waiting for room in the queue: {api_message(exc)}")
                    return
                self.waiting.remove(decision)
                self.outcomes.append(Outcome(decision.ref, FAILED, f"PodMigration not created: {api_message(exc)}"))
                continue
            self.waiting.remove(decision)
            self.migrating.append(Migrating(decision, created["metadata"]["name"]))
            self.say(decision, f"PodMigration {created['metadata']['name']} created")

    def evict(self) -> None:
        """Every pod to evict at once, as kubectl drain does; the operator's own only once no migration needs it."""
        migrations_pending = bool(self.waiting or self.migrating)
        for decision in [d for d in self.to_evict if not (d.last and migrations_pending)]:
            try:
                self.kube.evict_pod(decision.namespace, decision.name, decision.uid, self.args.grace_period)
            except ApiException as exc:
                message = api_message(exc)
                if status_code(exc) == 429:  # a PodDisruptionBudget (or the operator's webhook) says later
                    self.note(decision, f"eviction refused, retrying: {message}")
                    continue
                self.to_evict.remove(decision)
                self.outcomes.append(Outcome(decision.ref, FAILED, f"eviction failed: {message}"))
                continue
            self.to_evict.remove(decision)
            self.leaving.append(decision)
            self.say(decision, "evicted")

    def follow(self, give_up_at: float) -> None:
        """One line per phase each migration went through (from phaseTransitions, so none is missed)."""
        for item in list(self.migrating):
            migration = self.kube.get_migration(item.decision.namespace, item.name)
            if migration is None:
                self.finish(item, Outcome(item.decision.ref, FAILED, f"PodMigration {item.name} was deleted"))
                continue
            status = status_of(migration)
            transitions = status.get("phaseTransitions") or []
            for index in range(item.shown, len(transitions)):
                message = status.get("message", "") if index == len(transitions) - 1 else ""
                self.say(item.decision, f"{transitions[index]['phase']:<13}  {message}")
            item.shown = len(transitions)
            if phases.is_terminal(status.get("phase")):
                self.finish(item, migration_outcome(item.decision.ref, migration))
            elif self.term.clock() > give_up_at:
                self.finish(
                    item,
                    Outcome(
                        item.decision.ref,
                        FAILED,
                        f"PodMigration {item.name} is still "
                        f"{status.get('phase') or 'not started'} past the deadline: is the "
                        "podmigration operator running?",
                    ),
                )

    def finish(self, item: Migrating, outcome: Outcome) -> None:
        self.migrating.remove(item)
        self.outcomes.append(outcome)

    def watch_leaving(self) -> None:
        for decision in list(self.leaving):
            pod = self.kube.get_pod(decision.namespace, decision.name)
            if pod is None or pod["metadata"]["uid"] != decision.uid:
                self.leaving.remove(decision)
                self.outcomes.append(Outcome(decision.ref, EVICTED, decision.why))

    def give_up(self) -> None:
        """At the deadline nothing new starts; what still waits is not drained (running migrations end on their
        own timeout, which is the deadline)."""
        late = f"not done by the deadline ({self.args.timeout}s)"
        self.outcomes.extend(
            Outcome(d.ref, FAILED, f"{late}: {self.notes.get(d.ref, 'not started')}")
            for d in self.waiting + self.to_evict
        )
        self.outcomes.extend(Outcome(d.ref, FAILED, f"{late}: evicted, still terminating") for d in self.leaving)
        self.waiting, self.to_evict, self.leaving = [], [], []


def server_answers(kube: Kube, args: argparse.Namespace, plan: list[Decision]) -> dict[str, str]:
    """--dry-run=server: each planned migration and eviction sent as a dry run; pod -> the API server's refusal.
    A 429 (a PodDisruptionBudget allows no disruption now) is not one: the drain waits for it."""
    refused = {}
    for decision in plan:
        try:
            if decision.action == MIGRATE:
                kube.create_migration(
                    decision.namespace,
                    migration_body(decision.name, decision.namespace, args.target, 300),
                    dry_run=True,
                )
            elif decision.action == EVICT:
                kube.evict_pod(decision.namespace, decision.name, decision.uid, args.grace_period, dry_run=True)
        except ApiException as exc:
            if status_code(exc) != 429:
                refused[decision.ref] = f"the API server refuses it: {api_message(exc)}"
    return refused


def print_plan(kube: Kube, args: argparse.Namespace, plan: list[Decision], term: Terminal) -> int:
    refused = server_answers(kube, args, plan) if args.dry_run == "server" else {}
    print(f"drain of node {args.node}, dry run ({args.dry_run}): nothing cordoned, migrated or evicted", file=term.out)
    if plan:
        print(
            table(
                [["POD", "ACTION", "WHY"]]
                + [[d.ref, d.action, "; ".join(filter(None, [d.why, refused.get(d.ref)]))] for d in plan]
            ),
            file=term.out,
        )
    return EXIT_OK if plan_complete(plan) and not refused else EXIT_FAILED


def drain(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    plan = read_plan(kube, args, term)
    if args.dry_run != "none":
        return print_plan(kube, args, plan, term)
    blocking = [d.ref for d in plan if d.action == BLOCK]
    if blocking:
        print(
            f"error: cannot drain node {args.node}: DaemonSet pods {', '.join(blocking)} would be started again "
            "there; use --ignore-daemonsets to leave them",
            file=term.err,
        )
        return EXIT_FAILED
    kube.cordon_node(args.node)
    print(f"node/{args.node} cordoned", file=term.out)
    outcomes = Drainer(kube, args, term, plan).run()
    rows = [["POD", "ACTION", "RESULT"]] + [[o.ref, o.action, o.result] for o in sorted(outcomes, key=lambda o: o.ref)]
    print(table(rows), file=term.out)
    if drained(outcomes):
        print(f"node/{args.node} drained", file=term.out)
        return EXIT_OK
    print(f"node/{args.node} not drained: pods that must leave are still on it", file=term.err)
    return EXIT_FAILED
