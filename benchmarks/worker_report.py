"""The rendering half of the worker benchmark: the table, the ratios and the target, and the
JSON document (see worker_benchmark.py for what each figure is)."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Dict, List, Optional

from worker_measure import Figures, Series

TARGET_ISA = "arm-a64"
TARGET_FACTOR = 0.3
FIGURES = (
    ("round_trip", "round trip at the client"),
    ("executor", "on the executor (per-action overhead)"),
    ("execution", "process / request alone"),
)


def percentile(values: List[float], fraction: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(s: Series, figure: str) -> Dict[str, Optional[float]]:
    values = getattr(s, figure)
    return {"p50": statistics.median(values) if values else None, "p95": percentile(values, 0.95)}


def ratio(figures: Figures, isa: str, figure: str) -> Optional[float]:
    one_shot = summary(figures.series[isa]["one-shot"], figure)["p50"]
    worker = summary(figures.series[isa]["worker"], figure)["p50"]
    return worker / one_shot if one_shot and worker is not None else None


def print_report(figures: Figures) -> None:
    print(f"persistent workers: {figures.actions} trivial actions per executor and mode, one at a time")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in figures.load)}")
    print()
    print("| executor | figure, ms | one-shot p50 | one-shot p95 | worker p50 | worker p95 | worker / one-shot (p50) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for isa, by_mode in figures.series.items():
        for figure, title in FIGURES:
            one, work = summary(by_mode["one-shot"], figure), summary(by_mode["worker"], figure)
            r = ratio(figures, isa, figure)
            print(
                f"| {isa} | {title} | {one['p50']:.1f} | {one['p95']:.1f} | {work['p50']:.1f} | "
                f"{work['p95']:.1f} | {r:.2f}x |"
            )
    print()
    for isa, by_mode in figures.series.items():
        first = by_mode["worker"].first_request
        if first:
            print(
                f"{isa}: the request that started the worker took {first['executor']:.1f} ms on the executor "
                f"({first['round_trip']:.1f} ms round trip)"
            )
    if TARGET_ISA in figures.series:
        r = ratio(figures, TARGET_ISA, "executor")
        met = r is not None and r <= TARGET_FACTOR
        print(
            f"target: emulated ARM64 per-action overhead with a worker <= {TARGET_FACTOR}x one-shot: "
            f"{r:.2f}x, {'met' if met else 'MISSED'}"
        )


def json_report(figures: Figures) -> dict:
    return {
        "actions": figures.actions,
        "load": list(figures.load),
        "series": {
            isa: {
                mode: {
                    **{figure: summary(s, figure) for figure, _ in FIGURES},
                    "first_request": s.first_request,
                    "raw": asdict(s),
                }
                for mode, s in by_mode.items()
            }
            for isa, by_mode in figures.series.items()
        },
        "ratios_p50": {isa: {figure: ratio(figures, isa, figure) for figure, _ in FIGURES} for isa in figures.series},
        "target": {"isa": TARGET_ISA, "figure": "executor", "factor": TARGET_FACTOR},
    }
