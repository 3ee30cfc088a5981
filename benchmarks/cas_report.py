"""The rendering half of the storage benchmark: the targets, the table, the machine-limit
lines and the JSON document, from the figures cas_measure.py gives (see cas_benchmark.py's
docstring for what each figure is)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cas_measure import FMB_RUNS, LABELS, REPETITIONS, Figures, Workload, value


@dataclass(frozen=True)
class Target:
    """The bridge's figure against a reference: BuildGrid's same figure, or the machine limit."""

    figure: str
    reference: str  # "buildgrid" or "machine"
    factor: float
    higher_is_better: bool

    def text(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        ref = "BuildGrid" if self.reference == "buildgrid" else "machine limit"
        return f"bridge {op} {self.factor:g}x {ref}"


TARGETS = [
    Target("write_mbps", "buildgrid", 1.5, True),
    Target("write_mbps", "machine", 0.6, True),
    Target("read_mbps", "buildgrid", 1.0, True),
    Target("fmb_ms", "buildgrid", 0.25, False),
    Target("single_update_rps", "buildgrid", 1.5, True),
]

MACHINE_TITLES = {
    "hash_write_fsync_mbps": "SHA-256 + write 1 MiB chunks + fsync, MB/s (the machine limit)",
    "hash_mbps": "SHA-256 only, MB/s",
    "write_fsync_mbps": "write 1 MiB chunks + fsync only, MB/s",
}


def row_titles(workload: Workload) -> Dict[str, str]:
    digests = workload.present_blobs + workload.absent_blobs
    updates = f"{workload.single_updates:,} req, {workload.concurrency} threads"
    return {
        "write_mbps": f"ByteStream Write {workload.blob_label}, MB/s (best of {REPETITIONS})",
        "read_mbps": f"ByteStream Read {workload.blob_label}, MB/s (best of {REPETITIONS})",
        "fmb_ms": f"FindMissingBlobs {digests:,} digests, ms (median of {FMB_RUNS})",
        "single_update_rps": f"1-blob BatchUpdateBlobs, req/s ({updates})",
        "rss_idle_mib": "server RSS idle after start, MiB",
        "rss_write_mib": "server peak RSS during writes, MiB",
        "rss_read_mib": "server peak RSS during reads, MiB",
        "rss_growth_mib": "server peak RSS growth over idle, MiB",
    }


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def evaluate(
    target: Target, results: Dict[str, Figures], machine: Figures
) -> Tuple[Optional[float], str]:
    """The bridge's ratio to the target's reference, and PASS, MISS or n/a."""
    if "bridge" not in results:
        return None, "n/a"
    mine = value(results["bridge"], target.figure)
    if target.reference == "machine":
        reference = value(machine, "hash_write_fsync_mbps")
    else:
        reference = value(results.get("buildgrid"), target.figure)
    if mine is None:
        return None, "MISS (error)"
    r = ratio(mine, reference)
    if r is None:
        return None, "n/a"
    ok = r >= target.factor if target.higher_is_better else r <= target.factor
    return r, "PASS" if ok else "MISS"


def cell(figures: Optional[Figures], key: str) -> str:
    figure = (figures or {}).get(key)
    if figure is None:
        return "-"
    if figure.error is not None:
        return "ERR"
    return f"{figure.value:,.1f}" if figure.value < 1000 else f"{figure.value:,.0f}"


def fmt_ratio(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.2f}x"


def table_rows(
    workload: Workload, results: Dict[str, Figures], machine: Figures
) -> List[List[str]]:
    bridge, buildgrid = results.get("bridge"), results.get("buildgrid")
    rows = [["figure", "bridge", "BuildGrid", "ratio", "target", "result"]]
    for key, title in row_titles(workload).items():
        plain_ratio = fmt_ratio(ratio(value(bridge, key), value(buildgrid, key)))
        row = [title, cell(bridge, key), cell(buildgrid, key), plain_ratio, "", ""]
        for target in [t for t in TARGETS if t.figure == key]:
            r, verdict = evaluate(target, results, machine)
            if row[4]:  # a second target on the same figure gets its own row
                rows.append(row)
                row = ["  same figure, against the machine limit", "", "", "", "", ""]
            row[3:] = [fmt_ratio(r), target.text(), verdict]
        rows.append(row)
    return rows


def render_table(rows: List[List[str]]) -> str:
    """Columns padded to their widest cell; the numbers and the ratio right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: List[str]) -> str:
        cells = [
            c.rjust(w) if 1 <= i <= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule] + [line(row) for row in rows[1:]])


def machine_lines(machine: Figures) -> List[str]:
    width = max(len(title) for title in MACHINE_TITLES.values())
    return [
        f"  {title.ljust(width)}  {cell(machine, key):>8}" for key, title in MACHINE_TITLES.items()
    ]


def error_lines(results: Dict[str, Figures], machine: Figures) -> List[str]:
    """One line per distinct error of each owner, naming the figures it cost."""
    lines = []
    for owner, figures in [("machine", machine)] + [(LABELS[n], f) for n, f in results.items()]:
        by_error: Dict[str, List[str]] = {}
        for key, figure in figures.items():
            if figure.error is not None:
                by_error.setdefault(figure.error, []).append(key)
        lines += [f"  {owner} [{', '.join(keys)}]: {error}" for error, keys in by_error.items()]
    return lines


def print_report(
    workload: Workload,
    results: Dict[str, Figures],
    machine: Figures,
    work_dir: Path,
    load_before: float,
) -> None:
    print()
    print(f"CAS benchmark: {os.cpu_count()} cores, shared by the client and the server under test;")
    print(f"state dirs and the machine-limit file under {work_dir}.")
    print(f"1-minute load average at the start: {load_before:.2f} (other work skews every figure)")
    print(render_table(table_rows(workload, results, machine)))
    print("ratio = bridge / BuildGrid (on the machine-limit line: bridge / machine limit).")
    print(
        f"A server that buffers whole blobs grows by at least the blob size ({workload.blob_label})."
    )
    print("BuildGrid's disk storage does not fsync blobs; the bridge does (its default).")
    print()
    print(f"Machine limit, no network ({workload.blob_label}, best of {REPETITIONS}):")
    print("\n".join(machine_lines(machine)))
    errors = error_lines(results, machine)
    if errors:
        print("Errors:")
        print("\n".join(errors))


def json_report(
    workload: Workload, results: Dict[str, Figures], machine: Figures, load_before: float
) -> dict:
    targets = []
    for target in TARGETS:
        r, verdict = evaluate(target, results, machine)
        targets.append(
            {"target": target.text(), "figure": target.figure, "ratio": r, "result": verdict}
        )
    return {
        "workload": asdict(workload),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_before,
        "machine": {k: asdict(v) for k, v in machine.items()},
        "servers": {
            name: {k: asdict(v) for k, v in figures.items()} for name, figures in results.items()
        },
        "targets": targets,
    }
