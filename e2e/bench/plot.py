"""docs/benchmarks.png: downtime and total time against memory, one line per method and memory pattern, medians
with min-max bars, and the forked-kubelet prototype's published downtimes for scale."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the benchmark runs headless, in make test too
import matplotlib.pyplot as plt

from .results import METHODS, Measurement, spread
from .workload import IDLE

# Published median downtimes (MB, seconds) of the stop-and-copy prototype on a forked kubelet (issue 8).
PROTOTYPE = [(0, 2.1), (500, 4.3), (1000, 4.0), (2500, 7.8), (5000, 14.0), (10000, 26.7)]
COLORS = dict(zip(METHODS, ("tab:blue", "tab:orange", "tab:gray", "tab:green")))


def write(path: Path, results: list[Measurement], sizes: list[int], patterns: list[str]) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for axis, what, title in zip(axes, ("downtime", "total"), ("Downtime (prober)", "Total time")):
        for method in METHODS:
            for pattern in patterns:
                points = [(s, spread(results, method, s, pattern, what)) for s in sizes]
                points = [(s, p) for s, p in points if p]
                if not points:
                    continue
                xs = [s for s, _ in points]
                ys = [p.median for _, p in points]
                bars = [[p.median - p.low for _, p in points], [p.high - p.median for _, p in points]]
                axis.errorbar(
                    xs,
                    ys,
                    yerr=bars,
                    color=COLORS[method],
                    capsize=3,
                    marker="o",
                    linestyle="-" if pattern == IDLE else "--",
                    label=f"{method}, {pattern}",
                )
        if what == "downtime":
            shown = [(mb, s) for mb, s in PROTOTYPE if mb <= max(sizes) * 1.25]
            axis.plot(
                [mb for mb, _ in shown],
                [s for _, s in shown],
                "k:",
                marker="x",
                label="forked-kubelet prototype (published)",
            )
        axis.set(title=title, xlabel="memory of the workload (MiB of ballast)", ylabel="seconds")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.savefig(path, dpi=110)
    plt.close(figure)
