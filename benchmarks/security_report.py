"""The rendering half of the security benchmark: the target, the table and the JSON document,
from the figures security_measure.py gives (see security_benchmark.py's docstring for what
each figure is)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cas_measure import Figures, value
from cas_report import fmt_ratio, ratio, render_table
from security_measure import DESCRIPTIONS, LABELS, SERVERS, Workload

# The secure bridge's CAS throughput against the plain one's, measured in the same run.
TARGET_FACTOR = 0.85
TARGET_FIGURES = ("write_mbps", "read_mbps", "update_rps_1", "update_rps_n")
TARGET_TEXT = f"secure >= {TARGET_FACTOR:g}x plain"


def row_titles(workload: Workload) -> Dict[str, str]:
    reps = workload.repetitions
    updates = f"{workload.updates:,} req x {reps}"
    return {
        "write_mbps": f"ByteStream Write {workload.blob_label}, MB/s (median of {reps})",
        "read_mbps": f"ByteStream Read {workload.blob_label}, MB/s (median of {reps})",
        "update_rps_1": f"1-blob BatchUpdateBlobs, req/s, 1 thread ({updates}, median)",
        "update_rps_n": (
            f"1-blob BatchUpdateBlobs, req/s, {workload.concurrency} threads ({updates}, median)"
        ),
        "update_server_cpu_us": "  bridge CPU per 1-thread update, us (psutil, median)",
        "update_client_cpu_us": "  client CPU per 1-thread update, us (this process, median)",
        "ac_p50_ms": f"GetActionResult round trip p50, ms ({workload.ac_calls:,} calls)",
        "ac_p95_ms": f"GetActionResult round trip p95, ms ({workload.ac_calls:,} calls)",
        "sign_us": f"sign_result, {workload.outputs} outputs, us (median of {workload.crypto_iterations:,})",
        "verify_us": f"ResultVerifier.problem, us (median of {workload.crypto_iterations:,})",
    }


def verdict(
    key: str, results: Dict[str, Figures], measured: str, baseline: str, meets: Callable[[float], bool]
) -> Tuple[Optional[float], str]:
    """measured / baseline for a targeted figure, and PASS (`meets` the ratio), MISS or n/a."""
    figure, base = value(results.get(measured), key), value(results.get(baseline), key)
    if figure is None:
        return None, "MISS (error)"
    r = ratio(figure, base)
    if r is None:
        return None, "n/a"
    return r, "PASS" if meets(r) else "MISS"


def evaluate(key: str, results: Dict[str, Figures]) -> Tuple[Optional[float], str]:
    """secure / plain for a targeted figure, and PASS, MISS or n/a."""
    return verdict(key, results, "secure", "plain", lambda r: r >= TARGET_FACTOR)


def cell(figures: Optional[Figures], key: str) -> str:
    figure = (figures or {}).get(key)
    if figure is None:
        return "-"
    if figure.error is not None:
        return "ERR"
    v = figure.value
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.1f}" if v >= 10 else f"{v:.2f}"


def table_rows(workload: Workload, results: Dict[str, Figures]) -> List[List[str]]:
    plain, secure = results.get("plain"), results.get("secure")
    rows = [["figure", "plain", "secure", "secure/plain", "target", "result"]]
    for key, title in row_titles(workload).items():
        row = [title, cell(plain, key), cell(secure, key)]
        if key in TARGET_FIGURES:
            r, verdict = evaluate(key, results)
            row += [fmt_ratio(r), TARGET_TEXT, verdict]
        else:
            row += [fmt_ratio(ratio(value(secure, key), value(plain, key))), "", ""]
        rows.append(row)
    return rows


def error_lines(results: Dict[str, Figures]) -> List[str]:
    lines = []
    for name, figures in results.items():
        by_error: Dict[str, List[str]] = {}
        for key, figure in figures.items():
            if figure.error is not None:
                by_error.setdefault(figure.error, []).append(key)
        lines += [f"  {LABELS[name]} [{', '.join(keys)}]: {error}" for error, keys in by_error.items()]
    return lines


def print_header(title: str, where: str, load_before: float, servers: Sequence[Tuple[str, str]]) -> None:
    """The lines every two-bridge benchmark starts with: the machine, where its files are, the
    load before and now, and what each bridge is."""
    load_after = os.getloadavg()[0]
    print()
    print(f"{title}: {os.cpu_count()} cores, shared by the client and both bridges;")
    print(where)
    print(
        f"1-minute load average: {load_before:.2f} at the start, {load_after:.2f} at the end "
        "(other work skews every figure)"
    )
    for label, description in servers:
        print(f"  {label}: {description}")


def print_report(
    workload: Workload, results: Dict[str, Figures], work_dir: Path, load_before: float
) -> None:
    print_header("Security benchmark", f"state dirs, certificates and the token under {work_dir}.", load_before,
                 [(LABELS[name], DESCRIPTIONS[name]) for name in SERVERS])
    print(render_table(table_rows(workload, results)))
    print(
        "secure/plain: the secure bridge's figure over the plain one's, measured in the same run "
        "(repetitions interleaved between the two)."
    )
    print(
        "sign_result is the executor's cost (the plain setup signs nothing); ResultVerifier.problem "
        "is what each bridge runs per cache hit: on plain, no keys and an unsigned result."
    )
    print(
        f"Target: CAS throughput (ByteStream read and write, single-blob updates/s) within "
        f"{100 - TARGET_FACTOR * 100:.0f}% of plain text, i.e. {TARGET_TEXT}."
    )
    errors = error_lines(results)
    if errors:
        print("Errors:")
        print("\n".join(errors))


def json_report(workload: Workload, results: Dict[str, Figures], load_before: float) -> dict:
    targets = []
    for key in TARGET_FIGURES:
        r, verdict = evaluate(key, results)
        targets.append({"target": TARGET_TEXT, "figure": key, "ratio": r, "result": verdict})
    return {
        "workload": asdict(workload),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_before,
        "servers": {
            name: {
                "description": DESCRIPTIONS[name],
                "figures": {k: asdict(v) for k, v in figures.items()},
            }
            for name, figures in results.items()
        },
        "ratios_secure_over_plain": {
            key: ratio(value(results.get("secure"), key), value(results.get("plain"), key))
            for key in row_titles(workload)
        },
        "targets": targets,
    }
