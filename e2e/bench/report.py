"""docs/benchmarks.md: everything one run of the benchmark found, with what it ran and where, so the figures can be
judged and reproduced. Nothing in it is written by hand: `make bench` regenerates all of it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import e2elib as lib

from . import floor, manual, parallel, targets
from .results import COLD, FLOOR, MANUAL, METHODS, OURS, Measurement, Spread, select, spread
from .workload import IDLE

PROTOTYPE = "the schrej/podmigration-operator evaluation (stop-and-copy on a forked kubelet)"
#: The before/after profile of a 1 GiB migration, kept by hand (one benchmark run cannot measure old code); the
#: report carries it whole, so docs/benchmarks.md has every figure of issue 8 in one place.
PROFILE = lib.REPO / "docs" / "benchmarks-profile.md"


@dataclass
class Report:
    command: str
    started: str
    seconds: float
    sizes: list[int]
    patterns: list[str]
    runs: int
    rewrite_mbps: float
    machine: dict[str, str]
    versions: dict[str, str]
    results: list[Measurement]
    parallel: dict[str, list[Measurement]]  # label -> the migrations of that part, "alone" first
    parallel_size: int
    parallel_count: int
    foreign_pods: int
    foreign_migrations: int
    max_load: float
    failures: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Report:
        """The report of an earlier run from its benchmarks.json, to render it again (`--render`) when the report's
        text changes without measuring again."""
        known = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in raw.items() if k in known})
        report.results = [Measurement(**m) for m in raw["results"]]
        report.parallel = {label: [Measurement(**m) for m in runs] for label, runs in raw["parallel"].items()}
        return report


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def _pattern_title(report: Report, pattern: str) -> str:
    if pattern == IDLE:
        return "memory idle (written once)"
    return f"memory rewritten continuously ({report.rewrite_mbps:g} MiB/s)"


def _shown(value: Spread | None) -> str:
    return str(value) if value else "-"


def results_table(report: Report, pattern: str) -> list[str]:
    rows = []
    for size in report.sizes:
        for method in METHODS:
            runs = select(report.results, method, size, pattern)
            if not runs:
                continue
            steps = targets.profile(report.results, method, size, pattern).split("; CRIU")[0]
            kept = "kept" if all(m.state_kept for m in runs) else "lost"
            wrong = sum(m.wrong for m in runs)
            rows.append(
                [
                    str(size),
                    method,
                    *(
                        _shown(spread(report.results, method, size, pattern, what))
                        for what in ("downtime", "steps.downtime", "total", "frozen")
                    ),
                    steps,
                    kept + (f", {wrong} wrong answers" if wrong else ""),
                ]
            )
    return _table(
        [
            "MiB",
            "method",
            "downtime s",
            "operator's downtime s",
            "total s",
            "CRIU frozen s",
            "steps (medians)",
            "state",
        ],
        rows,
    )


def targets_table(report: Report) -> list[str]:
    rows = []
    for pattern in report.patterns:
        for v in targets.evaluate(report.results, report.sizes, pattern):
            met = {True: "yes", False: "**no**", None: "-"}[v.met]
            rows.append([v.target, pattern, v.value, v.limit, met, v.margin, v.why])
    return _table(["target", "memory", "value", "limit", "met", "margin", "where the seconds go"], rows)


def parallel_table(report: Report) -> list[str]:
    alone = report.parallel.get("alone", [])
    base_down = Spread.of([m.downtime for m in alone]).median if alone else None
    base_total = Spread.of([m.total for m in alone]).median if alone else None
    rows = []
    for label, runs in report.parallel.items():
        if not runs:
            rows.append([label, "0", "-", "-", "-", "-", "-"])
            continue
        down, total = Spread.of([m.downtime for m in runs]), Spread.of([m.total for m in runs])
        rows.append(
            [
                label,
                str(len(runs)),
                str(down),
                str(total),
                f"{total.high:.2f}",
                f"{down.median / base_down:.2f}x" if base_down else "-",
                f"{total.median / base_total:.2f}x" if base_total else "-",
            ]
        )
    return _table(
        ["migrations", "n", "downtime s", "total s", "longest total s", "downtime vs alone", "total vs alone"], rows
    )


def profile_section(report: Report) -> list[str]:
    """One migration of our tool, the run with the median downtime at 1 GiB (or the largest size measured up to
    it), idle memory: its durations and its trace."""
    ours = [m for m in report.results if m.method == OURS and m.pattern == report.patterns[0]]
    sizes = [s for s in report.sizes if s <= targets.GIB and any(m.size_mb == s for m in ours)]
    if not sizes:
        return ["(no migration of our tool at 1 GiB or less was measured)"]
    runs = sorted((m for m in ours if m.size_mb == sizes[-1]), key=lambda m: m.downtime)
    chosen = runs[len(runs) // 2]
    durations = ", ".join(f"{k} {v:.2f} s" for k, v in chosen.steps.items())
    frozen = f"{chosen.frozen:.2f}" if chosen.frozen is not None else "-"
    return [
        f"{sizes[-1]} MiB, {report.patterns[0]}, run {chosen.run} (the median of {len(runs)} by downtime):"
        f" prober downtime {chosen.downtime:.2f} s; `status.durations`: {durations}; CRIU frozen {frozen} s."
        " Phase transitions (offsets from the creation of the PodMigration), then the lines the operator and the"
        " node-helpers logged about it:",
        "",
        "```",
        *chosen.trace,
        "```",
    ]


def before_after(profile: Path = PROFILE) -> list[str]:
    """The hand-kept profile without its title, its headings (outside code blocks) one level down so they sit
    under this report's section."""
    lines, fenced = [], False
    for line in profile.read_text().splitlines()[1:]:
        fenced ^= line.startswith("```")
        lines.append(f"#{line}" if line.startswith("#") and not fenced else line)
    return lines


def _what(report: Report) -> list[str]:
    bundle = floor.BUNDLES / "<name>"
    dump, restore = floor.commands(bundle, "<name>")
    build = manual.build_script(manual.TARGET_DIR / "<name>.tar", "<name>", f"{manual.IMAGES}/<name>")
    return [
        "- **Workload**: the e2e counter (`e2e/images/counter/counter.py`, BestEffort pod) holding"
        " `COUNTER_BALLAST_MB` MiB more memory, half random and half a repeated pattern; *idle*: written once before"
        f" the port listens; *rewrite*: `COUNTER_REWRITE_MBPS={report.rewrite_mbps:g}`, a thread copies it over itself"
        " 1 MiB at a time, round and round at that rate. Every measurement starts a fresh pod (and Service) on the"
        " source node and deletes all it made afterwards (pods, Service, PodMigration, archives, images, runc"
        " containers).",
        "- **Downtime** (as a client sees it): the benchmark process on the host opens a new TCP connection to the"
        " workload's ClusterIP Service every 10 ms (each given 1 s) and checks the answer: same `token` (same"
        " process) and a `count` that no later answer of that process undercuts. Downtime is the longest time"
        " between two correct answers around the move. *Wrong* answers are counted: from another process, or given"
        " by the source after its checkpoint, whose state the restore rolls back (the client saw updates that were"
        " lost; they do not shorten the downtime). For the cold restart the new process's answers are correct too"
        " (its state is lost by design, shown as *lost*).",
        "- **Total**: from the first action of the move to its end: our tool, creating the PodMigration to its"
        " `Succeeded` transition (cleanup included); the manual recipe and the cold restart, the first command to"
        " the first correct answer on the target; the floor, the dump command to the first answer after the restore.",
        f"- **{OURS}**: a PodMigration (`spec.targetNode`, `timeoutSeconds: 1800`, defaults otherwise). Steps:"
        " the operator's `status.durations`; CRIU frozen: `status.containers[].criu.frozenTime`.",
        f"- **{MANUAL}** (baseline a): `POST https://<source ip>:10250/checkpoint/<ns>/<pod>/counter` to the kubelet"
        " with the API server's kubelet client certificate (`.e2e/pki`); `crictl stop -t 0 <container>` on the"
        " source and the pod deleted at once (the kubelet API leaves it running, and what it answers after the"
        " checkpoint is lost: those answers are wrong); `cp` of the archive"
        f" between the nodes' directories on this host to `{manual.TARGET_DIR}/`; on the target `{build}`; then a pod"
        " on the target with that image (`imagePullPolicy: Never`) and the same labels, so the Service selects it."
        " CRIU frozen: the archive's `stats-dump`.",
        f"- **{COLD}** (baseline b): delete the pod (its 1 s grace period) and at once create a new one on the target,"
        " as a controller does; downtime lasts until the new process answers (its ballast is written by then).",
        f"- **{FLOOR}** (baseline c): {floor.WHAT} Dump: `{dump}`; restore: `{restore}`. Steps: both commands'"
        " wall time and CRIU's own restore time (`stats-restore`); CRIU frozen: `stats-dump`.",
        f"- **At once**: counters of {report.parallel_size} MiB (idle), one migrated alone, then"
        f" {report.parallel_count} migrated together under the operator's per-node limit as installed (those over it"
        " wait as `Queued`) and, where a row says so, raised for that part with"
        f" `kubectl -n podmigration-system set env {parallel.OPERATOR} {parallel.LIMIT_ENV}={report.parallel_count}`"
        " (put back afterwards). Totals run from the common creation of the PodMigrations.",
    ]


def render(report: Report) -> str:
    shared = (
        f"**Shared machine**: other engineers' tests ran on the same cluster during this run (up to"
        f" {report.foreign_pods} other pods at a time, {report.foreign_migrations} other PodMigrations created,"
        f" load average up to {report.max_load:.1f} on {report.machine['nproc']} cores): the figures are"
        " noisier and slower than on an idle machine."
        if report.foreign_pods or report.foreign_migrations
        else f"No other workload was seen on the cluster (load average up to {report.max_load:.1f})."
    )
    lines = [
        "# Benchmark: live migration downtime against three baselines",
        "",
        f"Generated by `make bench` on {report.started} in {report.seconds / 60:.1f} min; the command was",
        "",
        f"    {report.command}",
        "",
        f"Sizes {', '.join(map(str, report.sizes))} MiB, {report.runs} run(s) each, per memory pattern. Figures are"
        " medians with the spread (min-max) in parentheses, in seconds. Raw runs: `benchmarks.json` next to this"
        " file. " + shared,
        "",
        "## Machine and versions",
        "",
        *_table(["what", "value"], [[k, v] for k, v in {**report.machine, **report.versions}.items()]),
        "",
        "## What is measured",
        "",
        *_what(report),
        "",
        "![downtime and total time against memory](benchmarks.png)",
        "",
    ]
    for pattern in report.patterns:
        lines += [f"## Results: {_pattern_title(report, pattern)}", "", *results_table(report, pattern), ""]
    migrations = [m for m in report.results if m.method == OURS] + [m for ms in report.parallel.values() for m in ms]
    leaving = [m for m in migrations if m.leftovers]
    if leaving:
        lines += [
            f"**Left behind**: {len(leaving)} of our {len(migrations)} migrations left"
            f" {sum(m.leftovers for m in leaving)} checkpoint images or archives on the nodes once their pods"
            " were gone (the image the restored container ran from); the benchmark removed them.",
            "",
        ]
    lines += [
        "## Targets (issue 8)",
        "",
        "Computed from the medians above. *Where the seconds go* lists our steps (the operator's `status.durations`)"
        f" and CRIU's frozen time when a target is missed. The prototype's 4.0 s at 1 GB is the median downtime"
        f" figure of {PROTOTYPE}.",
        "",
        *targets_table(report),
        "",
        "## Profile of one migration in this run",
        "",
        *profile_section(report),
        "",
        "## Profile of a 1 GiB migration before and after the changes of issue 8",
        "",
        "Copied from [benchmarks-profile.md](benchmarks-profile.md), kept by hand: old code cannot be measured by"
        " this run.",
        "",
        *before_after(),
        "",
        "## Several migrations at once",
        "",
        *parallel_table(report),
        "",
    ]
    if report.failures:
        lines += ["## Attempts that failed and were run again", "", *[f"- {f}" for f in report.failures], ""]
    return "\n".join(lines)
