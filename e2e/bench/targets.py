"""The targets of issue 8, computed from the medians of one run, each with its margin and, when missed, where the
seconds went (the operator's status.durations and CRIU's frozen time) so the miss says why."""

from __future__ import annotations

from dataclasses import dataclass

from .results import FLOOR, MANUAL, OURS, Measurement, select, spread

GIB = 1024
PROTOTYPE_1GIB = 4.0  # forked-kubelet stop-and-copy prototype, median downtime at 1 GB (../shared/RESEARCH.md)


@dataclass(frozen=True)
class Verdict:
    target: str
    pattern: str
    value: str
    limit: str
    met: bool | None  # None: not measured in this run (a size missing) or not applicable
    margin: str
    why: str


def _median(results: list[Measurement], method: str, size: int, pattern: str, what: str = "downtime") -> float | None:
    found = spread(results, method, size, pattern, what)
    return found.median if found else None


def profile(results: list[Measurement], method: str, size: int, pattern: str) -> str:
    """The method's own steps (medians), largest first, and CRIU's frozen time."""
    names = {name for m in select(results, method, size, pattern) for name in m.steps}
    steps = {name: _median(results, method, size, pattern, f"steps.{name}") for name in names}
    parts = [
        f"{name} {value:.2f} s"
        for name, value in sorted(steps.items(), key=lambda kv: -(kv[1] or 0))
        if value is not None and name not in ("downtime", "total")
    ]
    frozen = _median(results, method, size, pattern, "frozen")
    return ", ".join(parts) + (f"; CRIU frozen {frozen:.2f} s" if frozen is not None else "")


def slope(results: list[Measurement], method: str, sizes: list[int], pattern: str) -> float | None:
    """Least-squares slope of the median downtime against memory, seconds per GiB."""
    points = [(s / GIB, _median(results, method, s, pattern)) for s in sizes]
    points = [(x, y) for x, y in points if y is not None]
    if len({x for x, _ in points}) < 2:
        return None
    mx, my = sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def _verdict(
    target: str, pattern: str, value: float | None, limit: float, unit: str, why: str, shown: str | None = None
) -> Verdict:
    if value is None:
        return Verdict(target, pattern, "not measured", f"{limit:g}{unit}", None, "", why)
    met = value <= limit
    margin = f"{limit - value:.2f}{unit} to spare" if met else f"missed by {value - limit:.2f}{unit}"
    return Verdict(target, pattern, shown or f"{value:.2f}{unit}", f"{limit:g}{unit}", met, margin, "" if met else why)


def evaluate(results: list[Measurement], sizes: list[int], pattern: str) -> list[Verdict]:
    verdicts = []
    for size in sizes:
        ours, floor = _median(results, OURS, size, pattern), _median(results, FLOOR, size, pattern)
        over = ours - floor if ours is not None and floor is not None else None
        verdicts.append(
            _verdict(
                f"downtime - floor at {size} MiB",
                pattern,
                over,
                1.0 if size <= GIB else 2.0,
                " s",
                f"ours {ours:.2f} s: {profile(results, OURS, size, pattern)}; floor {floor:.2f} s"
                if over is not None
                else "",
            )
        )
    ours, manual = _median(results, OURS, GIB, pattern), _median(results, MANUAL, GIB, pattern)
    ratio = ours / manual if ours is not None and manual else None
    verdicts.append(
        _verdict(
            "downtime at 1 GiB / manual recipe's",
            pattern,
            ratio,
            0.5,
            "x",
            f"ours {ours:.2f} s: {profile(results, OURS, GIB, pattern)}; manual {manual:.2f} s: "
            f"{profile(results, MANUAL, GIB, pattern)}"
            if ratio is not None
            else "",
        )
    )
    ours_slope, floor_slope = slope(results, OURS, sizes, pattern), slope(results, FLOOR, sizes, pattern)
    ratio = ours_slope / floor_slope if ours_slope is not None and floor_slope else None
    largest = max(sizes)
    verdicts.append(
        _verdict(
            "downtime slope / floor's slope",
            pattern,
            ratio,
            1.5,
            "x",
            f"at {largest} MiB ours: {profile(results, OURS, largest, pattern)}",
            f"{ratio:.2f}x ({ours_slope:.2f} vs {floor_slope:.2f} s/GiB)" if ratio is not None else None,
        )
    )
    floor = _median(results, FLOOR, GIB, pattern)
    verdict = _verdict(
        "downtime at 1 GiB under the prototype's 4.0 s",
        pattern,
        ours,
        PROTOTYPE_1GIB,
        " s",
        f"{profile(results, OURS, GIB, pattern)}" + (f"; floor {floor:.2f} s" if floor is not None else "")
        if ours is not None
        else "",
    )
    if floor is not None and floor >= PROTOTYPE_1GIB:
        verdict = Verdict(
            verdict.target,
            pattern,
            verdict.value,
            verdict.limit,
            None,
            "not reachable",
            f"this machine's floor is {floor:.2f} s at 1 GiB",
        )
    verdicts.append(verdict)
    return verdicts
