"""The rendering half of the observability benchmark: the targets, the tables and the JSON
document, from the figures observability_measure.py gives (see observability_benchmark.py's
docstring for what each figure is)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cas_measure import Figures, value
from cas_report import fmt_ratio, ratio, render_table
from observability_measure import DESCRIPTIONS, LABELS, RENDER_BUDGET_MS, SERVERS, Workload
from security_report import cell, print_header, verdict

# Metrics on against metrics off, measured in the same run: at most 5% slower.
SLOWER_BY = 0.05
# figure -> True if higher is better (throughput), False if lower is (latency).
TARGET_FIGURES = {"update_rps_1": True, "update_rps_n": True, "execute_p50_ms": False}


def target_text(key: str) -> str:
    if TARGET_FIGURES[key]:
        return f"on >= {1 - SLOWER_BY:.2f}x off"
    return f"on <= {1 + SLOWER_BY:.2f}x off"


def row_titles(workload: Workload) -> Dict[str, str]:
    reps = workload.repetitions
    updates = f"{workload.updates:,} req x {reps}"
    return {
        "update_rps_1": f"1-blob BatchUpdateBlobs, req/s, 1 thread ({updates}, median)",
        "update_rps_n": (
            f"1-blob BatchUpdateBlobs, req/s, {workload.concurrency} threads ({updates}, median)"
        ),
        "update_server_cpu_us": "  bridge CPU per 1-thread update, us (psutil, median)",
        "update_client_cpu_us": "  client CPU per 1-thread update, us (this process, median)",
        "execute_p50_ms": f"Execute, cached result, round trip p50, ms ({workload.execute_calls:,} calls)",
        "execute_p95_ms": f"Execute, cached result, round trip p95, ms ({workload.execute_calls:,} calls)",
        "interceptor_us": (
            f"in process: a unary call's handler lookup and call, us (median of {workload.interceptor_calls:,})"
        ),
    }


def page_titles(workload: Workload) -> Dict[str, str]:
    n, loads = f"{workload.actions:,}", workload.page_loads
    return {
        "api_actions_bytes": f"/api/actions?since=0, {n} actions: response bytes",
        "api_actions_ms": f"/api/actions?since=0, {n} actions: ms to the last byte (median of {loads})",
        "real_page_ms": f"page, real time: data-first-render-ms, app.js start to first full draw (median of {loads})",
        "real_drawn_ms": f"page, real time: navigation start to first full draw, ms (median of {loads})",
        "real_painted_ms": f"page, real time: navigation start to the draw on screen (2 frames), ms (median of {loads})",
        "virtual_page_ms": (
            f"page, browser.render ({RENDER_BUDGET_MS} ms virtual-time budget): data-first-render-ms "
            f"(virtual clock, median of {loads})"
        ),
        "render_wall_ms": f"  browser.render of the page: chromium start to exit, ms (median of {loads})",
        "blank_wall_ms": f"  browser.render of about:blank: chromium start to exit, ms (median of {loads})",
    }


def evaluate(key: str, results: Dict[str, Figures]) -> Tuple[Optional[float], str]:
    """on / off for a targeted figure, and PASS, MISS or n/a."""
    higher_is_better = TARGET_FIGURES[key]
    return verdict(
        key, results, "on", "off", lambda r: r >= 1 - SLOWER_BY if higher_is_better else r <= 1 + SLOWER_BY
    )


def table_rows(workload: Workload, results: Dict[str, Figures]) -> List[List[str]]:
    off, on = results.get("off"), results.get("on")
    rows = [["figure", LABELS["off"], LABELS["on"], "on/off", "target", "result"]]
    for key, title in row_titles(workload).items():
        row = [title, cell(off, key), cell(on, key)]
        if key in TARGET_FIGURES:
            r, verdict = evaluate(key, results)
            row += [fmt_ratio(r), target_text(key), verdict]
        else:
            row += [fmt_ratio(ratio(value(on, key), value(off, key))), "", ""]
        rows.append(row)
    return rows


def page_rows(workload: Workload, results: Dict[str, Figures]) -> List[List[str]]:
    page = results.get("page")
    rows = [["figure", "value"]]
    for key, title in page_titles(workload).items():
        rows.append([title, cell(page, key)])
    return rows


def error_lines(results: Dict[str, Figures]) -> List[str]:
    lines = []
    for name, figures in results.items():
        by_error: Dict[str, List[str]] = {}
        for key, figure in figures.items():
            if figure.error is not None:
                by_error.setdefault(figure.error, []).append(key)
        label = LABELS.get(name, name)
        lines += [f"  {label} [{', '.join(keys)}]: {error}" for error, keys in by_error.items()]
    return lines


def scrape_line(results: Dict[str, Figures]) -> str:
    scrape = results.get("scrape", {})
    scrapes, ms, size = (value(scrape, k) for k in ("scrapes", "scrape_ms", "scrape_bytes"))
    if scrapes is None:
        return "/metrics of the metrics-on bridge: not scraped (see Errors)."
    return (
        f"/metrics of the metrics-on bridge: scraped {scrapes:.0f} times during the gRPC figures, "
        f"{size:,.0f} bytes, {ms:.1f} ms per scrape (median)."
    )


def print_report(
    workload: Workload, results: Dict[str, Figures], work_dir: Path, load_before: float
) -> None:
    print_header("Observability benchmark", f"state dirs and config files under {work_dir}.", load_before,
                 [(LABELS[name], DESCRIPTIONS[name]) for name in SERVERS])
    print(render_table(table_rows(workload, results)))
    print(
        "on/off: the metrics-on bridge's figure over the metrics-off one's, measured in the same run "
        "(slices interleaved between the two)."
    )
    print(scrape_line(results))
    print(
        f"Target: metrics cost at most {SLOWER_BY * 100:.0f}% on the hot path: single-blob updates/s "
        f"{target_text('update_rps_1')}, Execute p50 {target_text('execute_p50_ms')}."
    )
    print()
    print(f"Status page, {workload.actions:,} synthetic actions (observability.synthetic.fill), "
          "an in-process bridge, headless Chromium; no target beyond small and fast:")
    print(render_table(page_rows(workload, results)))
    print(
        "Real time: Chromium driven over the DevTools protocol, no virtual time. browser.render's "
        "virtual clock leaves out network waits and script time, so its figure is not the page's time."
    )
    errors = error_lines(results)
    if errors:
        print("Errors:")
        print("\n".join(errors))


def json_report(workload: Workload, results: Dict[str, Figures], load_before: float) -> dict:
    targets = []
    for key in TARGET_FIGURES:
        r, verdict = evaluate(key, results)
        targets.append({"target": target_text(key), "figure": key, "ratio": r, "result": verdict})
    return {
        "workload": asdict(workload),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_before,
        "load_average_1min_at_end": os.getloadavg()[0],
        "servers": {
            name: {
                "description": DESCRIPTIONS[name],
                "figures": {k: asdict(v) for k, v in results.get(name, {}).items()},
            }
            for name in SERVERS
        },
        "ratios_on_over_off": {
            key: ratio(value(results.get("on"), key), value(results.get("off"), key))
            for key in row_titles(workload)
        },
        "targets": targets,
        "scrape": {k: asdict(v) for k, v in results.get("scrape", {}).items()},
        "page": {k: asdict(v) for k, v in results.get("page", {}).items()},
    }
