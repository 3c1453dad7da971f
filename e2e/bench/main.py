"""The benchmark's command line: every size, memory pattern and run through our tool and the three baselines,
then several migrations at once, then the report, the plot and the raw figures.

    make bench                                                  # the local cluster; writes docs/benchmarks.*
    PYTHONPATH=e2e:e2e/tests python -m bench --quick --out DIR  # one small size, one run (what make test runs)
    PYTHONPATH=e2e:e2e/tests python -m bench --render docs/benchmarks.json  # the report again, nothing measured
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import e2elib as lib

from . import cold, floor, manual, ours, parallel, plot, report
from .cluster import Cluster
from .facts import Activity, machine, versions
from .results import COLD, FLOOR, MANUAL, OURS, Measurement
from .workload import IDLE, REWRITE, Workload

MEASURES: dict[str, Callable[[Cluster, Workload, int], Measurement]] = {
    OURS: ours.measure,
    MANUAL: manual.measure,
    COLD: cold.measure,
    FLOOR: floor.measure,
}
#: --methods names (short, shell-friendly) of the MEASURES keys.
METHOD_NAMES = {"ours": OURS, "manual": MANUAL, "cold": COLD, "floor": FLOOR}
ALONE = "alone"
TRIES = 4
SETTLE_SECONDS = 20
T = TypeVar("T")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="0,256,1024,4096", help="MiB of ballast, comma-separated")
    parser.add_argument("--patterns", default=f"{IDLE},{REWRITE}", help="memory patterns, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each method per size and pattern")
    parser.add_argument(
        "--methods",
        default=",".join(METHOD_NAMES),
        help=f"methods measured, comma-separated, of {','.join(METHOD_NAMES)} (e.g. ours: a profile)",
    )
    parser.add_argument("--rewrite-mbps", type=float, default=256, help="MiB/s the rewrite pattern writes")
    parser.add_argument("--parallel-size", type=int, default=256, help="MiB of each counter migrated at once")
    parser.add_argument("--parallel-count", type=int, default=4, help="migrations at once (0: none)")
    parser.add_argument(
        "--raise-limit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run them at once with the operator's per-node limit raised to their number",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one size (64 MiB), one run, the installed limit only: proves the benchmark works",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the report and plot again from an earlier run's benchmarks.json",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for benchmarks.md/.png/.json (default docs/; "
        "required with --quick, whose figures are not the benchmark's)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.methods.split(",")) - set(METHOD_NAMES)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}: expected some of {','.join(METHOD_NAMES)}")
    args.methods = [METHOD_NAMES[name] for name in args.methods.split(",")]
    if args.quick:
        if args.out is None:
            parser.error("--quick needs --out: its figures must not replace docs/benchmarks.md")
        args.sizes, args.runs, args.parallel_size, args.raise_limit = "64", 1, 64, False
    args.out = args.out or lib.REPO / "docs"
    return args


def attempt(cluster: Cluster, what: str, measure: Callable[[], T], failures: list[str]) -> T | None:
    """A measurement, run again (up to TRIES times) when it fails, once the cluster is healthy and settled: on a
    shared cluster a helper being reinstalled, or the whole cluster taken down and up again, must not end an hour
    of benchmark. Each failure is reported; after the last one the measurement is left out (None)."""
    for tries in range(1, TRIES + 1):
        try:
            return measure()
        except Exception as exc:
            failures.append(
                f"{what}, attempt {tries}{' (the last: left out)' if tries == TRIES else ''}: "
                f"{type(exc).__name__}: {exc}"
            )
            print(f"  failed: {failures[-1]}", flush=True)
            cluster.recover()
            time.sleep(SETTLE_SECONDS)
    return None


def _line(m: Measurement) -> str:
    frozen = f" frozen {m.frozen:.2f}" if m.frozen is not None else ""
    return (
        f"{m.size_mb:>5} MiB {m.pattern:<7} run {m.run} {m.method:<18} downtime {m.downtime:7.2f} s  "
        f"total {m.total:7.2f} s{frozen}  " + " ".join(f"{k} {v:.2f}" for k, v in m.steps.items())
    )


def matrix(cluster: Cluster, args: argparse.Namespace, activity: Activity, failures: list[str]) -> list[Measurement]:
    """Every size x pattern x run x method; the methods' order turns with the run, so none is always first after
    a pause or last after a large move."""
    results = []
    methods = args.methods
    for size in (int(s) for s in args.sizes.split(",")):
        for pattern in args.patterns.split(","):
            workload = Workload(size, pattern, args.rewrite_mbps)
            for run in range(args.runs):
                for method in methods[run % len(methods) :] + methods[: run % len(methods)]:
                    measured = attempt(
                        cluster,
                        f"{method} {workload.tag} run {run}",
                        partial(MEASURES[method], cluster, workload, run),
                        failures,
                    )
                    if measured:
                        print(_line(measured), flush=True)
                        results.append(measured)
                    activity.sample(cluster)
    return results


def at_once(cluster: Cluster, args: argparse.Namespace, failures: list[str]) -> dict[str, list[Measurement]]:
    """One migration alone, then `parallel_count` at once under the installed limit and (raise_limit) a raised one."""
    count = args.parallel_count
    if count < 1:
        return {}
    workload = Workload(args.parallel_size, IDLE, args.rewrite_mbps)
    cluster.recover()
    installed = parallel.current_limit()
    parts = [(ALONE, 1, False), (f"{count} at once, limit {installed}", count, False)]
    if args.raise_limit and installed != str(count):
        parts.append((f"{count} at once, limit {count}", count, True))
    found: dict[str, list[Measurement]] = {}
    for label, n, raised in parts:
        found[label] = []
        with parallel.outbound_limit(count) if raised else contextlib.nullcontext():
            for run in range(args.runs):
                measured = (
                    attempt(
                        cluster,
                        f"{label} run {run}",
                        partial(parallel.measure, cluster, workload, n, run, label),
                        failures,
                    )
                    or []
                )
                for m in measured:
                    print(_line(m), flush=True)
                found[label] += measured
    return found


def write(outcome: report.Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.md").write_text(report.render(outcome))
    plot.write(out / "benchmarks.png", outcome.results, outcome.sizes, outcome.patterns)
    print(f"wrote {out}/benchmarks.md and .png", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.render:
        write(report.Report.from_json(json.loads(args.render.read_text())), args.out)
        return
    began, started = time.monotonic(), datetime.now().astimezone()
    cluster = Cluster.connect()
    cluster.recover(timeout=600)
    activity = Activity()
    facts = machine(), versions(cluster)
    failures: list[str] = []
    results = matrix(cluster, args, activity, failures)
    together = at_once(cluster, args, failures)
    activity.sample(cluster)
    outcome = report.Report(
        command=" ".join(["PYTHONPATH=e2e:e2e/tests", "python", "-m", "bench", *map(shlex.quote, argv)]),
        started=started.strftime("%Y-%m-%d %H:%M %Z"),
        seconds=time.monotonic() - began,
        sizes=[int(s) for s in args.sizes.split(",")],
        patterns=args.patterns.split(","),
        runs=args.runs,
        rewrite_mbps=args.rewrite_mbps,
        machine=facts[0],
        versions=facts[1],
        results=results,
        parallel=together,
        parallel_size=args.parallel_size,
        parallel_count=args.parallel_count,
        foreign_pods=max(activity.foreign_pods, default=0),
        foreign_migrations=activity.foreign_migrations(cluster),
        max_load=max(activity.load, default=0.0),
        failures=failures,
    )
    write(outcome, args.out)
    (args.out / "benchmarks.json").write_text(json.dumps(asdict(outcome), indent=1) + "\n")
    print(f"wrote {args.out}/benchmarks.json; the run took {outcome.seconds / 60:.1f} min", flush=True)
    if failures:  # each was printed as it happened; said again at the end, where a reader of the output looks
        print(f"{len(failures)} attempt(s) failed (the report lists them too):", *failures, sep="\n- ", flush=True)
