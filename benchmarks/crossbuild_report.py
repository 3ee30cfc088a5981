"""The rendering half of the crossbuild benchmark: the text report of the figures that
crossbuild_measure.py gives (see crossbuild_benchmark.py's docstring for what each one means)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, List, Optional

from crossbuild_measure import ARCHIVE, INCREMENTAL_FILE, SHARDED_TESTS, TARGET_REDUCTION_PERCENT, Results
from pants_workspace import tail

COLUMN = 84  # where figures start


def row(label: str, value: str) -> str:
    return f"{label:<{COLUMN}}{value}"


def secs(seconds: float) -> str:
    return f"{seconds:8.2f} s"


def identical(expected: Dict[str, str], got: Dict[str, str]) -> str:
    if not expected:
        return "not compared (no archive was built in this run)"
    same = sum(1 for k, v in got.items() if expected.get(k) == v)
    return f"{same} of {len(expected)} byte-identical to the Pants-built archive's"


def phase_text(phase: Optional[Dict[str, float]], kind: str) -> str:
    if not phase:
        return f"no {kind} process ran"
    return f"{kind}s from +{phase['first_start']:.1f} s to +{phase['last_end']:.1f} s ({phase['seconds']:.1f} s)"


def report_header(meta: Dict, named_caches: Path) -> List[str]:
    return [
        "crossbuild benchmark: examples/cclib (6 test binaries, 122 cases), linux_arm64, 4 shards",
        f"host: {meta['machine']}, {meta['cpus']} CPUs; load average (1/5/15 min) before {meta['load_before']},"
        f" after {meta['load_after']}; whole run {meta['total_seconds']:.0f} s",
        f"Pants: 2.17.1, --no-pantsd, temporary projects; named caches shared ({named_caches},",
        "       warm zig libc cache); a fresh local store for every cold build",
        "NOTE: this host is x86-64. \"ARM64\" below is qemu-aarch64 user-mode emulation under proot (the",
        "      bridge's ARM64 executor and the baseline's zig both run emulated), much slower than real",
        "      ARM64 hardware: the reduction measured here reflects emulated ARM64, not real ARM64 machines.",
        "",
    ]


def report_archive(f: Dict) -> List[str]:
    a, lines = f["archive_build"], []
    lines += [
        f"   T_build_x86: cold `pants package {ARCHIVE}` on x86-64, fresh store, no remote",
        f"     cache, warm zig libc cache; {a['compiles']} Compile and {a['links']} Link processes; Pants start-up and the",
        row("     zig wheel's fetch and extraction into the store included", secs(a["cold_build_seconds"])),
        f"       Pants' log: {phase_text(a['compile_phase'], 'compile')}, {phase_text(a['link_phase'], 'link')}",
        f"       (the libc warm-up before it, same build with another fresh store: {a['libc_warmup_seconds']:.1f} s)",
    ]
    return lines


def report_shards(f: Dict) -> List[str]:
    s = f["archive_shards"]
    lines = [
        f"   shard runs: `pants test {SHARDED_TESTS}` with remote execution, fresh store, executor",
        "     concurrency 1 (each shard ran alone); Pants' \"succeeded in N s\" = ARM64 executor's worker",
        "     start to completion (inputs, run, outputs):",
    ]
    lines += [row(f"       {name}", secs(sec)) for name, sec in s["shard_seconds"].items()]
    lines.append(row("     max(shard run)", secs(s["max_shard_seconds"])))
    lines.append(f"       (whole `pants test` wall time, including rebuilding the archive: {s['test_run_wall_seconds']:.1f} s)")
    return lines


def report_baseline(f: Dict) -> List[str]:
    b = f["baseline"]
    arm, x86 = b["arm64_emulated"], b["x86_64_native"]
    expected = f.get("archive_build", {}).get("binaries_sha256", {})
    cold_note = "empty zig cache" if arm["libc_warmup"]["zig_cache_was_empty"] else "zig cache kept from an earlier run: that one-time cost is not re-measured"
    return [
        "   T_build_arm64: the same 6 binaries compiled and linked inside the emulated aarch64 userland",
        "     (aarch64 ziglang wheel's zig, the plugin's exact argv, no Pants; 12 compiles, then 6 links,",
        row(f"     {b['jobs']} at a time; zig libc cache warmed first)", secs(arm["build"]["seconds"])),
        f"       compile phase {arm['build']['compile_phase_seconds']:.1f} s, link phase {arm['build']['link_phase_seconds']:.1f} s;"
        f" binaries: {identical(expected, arm['build']['binaries_sha256'])}",
        f"       processes run again after an emulation flake (time of failed attempts included): "
        f"{', '.join(arm['build'].get('processes_run_again', [])) or 'none'}",
        row(f"     cold libc build in the userland (throwaway link of an empty main, {cold_note})",
            secs(arm["libc_warmup"]["link_seconds"])),
        row("   reference: the same raw build natively on x86-64 (x86-64 wheel, warm zig cache)", secs(x86["build"]["seconds"])),
        f"       compile phase {x86['build']['compile_phase_seconds']:.1f} s, link phase {x86['build']['link_phase_seconds']:.2f} s;"
        f" binaries: {identical(expected, x86['build']['binaries_sha256'])}",
        row("     cold libc build natively on x86-64 (throwaway link, empty zig cache)", secs(x86["libc_warmup"]["link_seconds"])),
        row("     emulation slow-down: T_build_arm64 / raw x86-64 build", f"{b['emulation_factor']:8.1f} x"),
    ]


def report_critical_paths(cp: Dict) -> List[str]:
    def verdict(percent: float) -> str:
        return "met" if percent >= TARGET_REDUCTION_PERCENT else "not met"

    lines = [
        row("   critical path, archive mode = T_build_x86 + max(shard run)", secs(cp["archive_mode_seconds"])),
        row("   critical path, baseline     = T_build_arm64 + max(shard run)", secs(cp["baseline_seconds"])),
        row(f"   reduction with archive mode (target: at least {TARGET_REDUCTION_PERCENT:.0f}%; {verdict(cp['reduction_percent'])})",
            f"{cp['reduction_percent']:8.1f} %"),
    ]
    if "fixed_overhead_seconds" in cp:
        pct = cp["reduction_same_overhead_percent"]
        lines += [
            f"   T_build_x86 spent {cp['fixed_overhead_seconds']:.1f} s before its first compile (Pants start-up, zig wheel fetch",
            "     and unpacking into a fresh store), which the raw baseline does not pay but a shard building",
            "     for itself would; with that fixed cost added to the baseline too:",
            row("   critical path, baseline + same fixed cost", secs(cp["baseline_with_same_overhead_seconds"])),
            row(f"   reduction with archive mode, equal fixed costs ({verdict(pct)})", f"{pct:8.1f} %"),
        ]
    return lines


def report_incremental(f: Dict) -> List[str]:
    i, cold = f["incremental"], f["archive_build"]

    def processes(run: Dict) -> str:
        return f"{len(run['compiles']):2d} Compile, {len(run['links']):2d} Link processes"

    noop, edit = i["noop"], i["after_edit"]
    return [
        f"2. Warm incremental vs cold: `pants package {ARCHIVE}`, the cold build's store kept",
        row(f"   cold build (figure 1): {cold['compiles']:2d} Compile, {cold['links']:2d} Link processes",
            secs(cold["cold_build_seconds"])),
        row(f"   no-op rebuild (nothing changed): {processes(noop)}", secs(noop["seconds"])),
        row(f"   one case appended to {Path(INCREMENTAL_FILE).name}: {processes(edit)}", secs(edit["seconds"])),
        f"       ran: {', '.join(edit['compiles'] + edit['links']) or 'nothing'}; "
        f"{phase_text(edit['compile_phase'], 'compile')}, {phase_text(edit['link_phase'], 'link')}",
        row("   incremental / cold", f"{edit['seconds'] / cold['cold_build_seconds']:8.2f}"),
    ]


def report_profiles(f: Dict) -> List[str]:
    by_profile = f["profiles"]
    names = sorted({n for p in by_profile.values() for n in p["binary_sizes"]})
    lines = [
        "3. Build profiles, linux_arm64: cold `pants package` (fresh store, warm zig libc cache); sizes in bytes",
        f"   {'profile':13s}{'cold build':>11s}{'link phase':>11s}{'total':>10s}"
        + "".join(f"{Path(n).name:>15s}" for n in names),
    ]
    for profile, p in by_profile.items():
        link = p["link_phase"]["seconds"] if p.get("link_phase") else 0.0
        lines.append(
            f"   {profile:13s}{p['cold_build_seconds']:9.1f} s{link:9.1f} s{p['total_bytes']:10,d}"
            + "".join(f"{p['binary_sizes'].get(n, 0):15,d}" for n in names)
        )
    lines.append("   (libc warm-up runs before each, discarded: "
                 + ", ".join(f"{k} {v['libc_warmup_seconds']:.1f} s" for k, v in by_profile.items()) + ")")
    return lines


def report(results: Results, cp: Optional[Dict], meta: Dict, named_caches: Path) -> str:
    """The whole report: `results` and their critical paths `cp`, the run's `meta` (machine,
    load averages, duration) and the named caches dir the Pants runs shared."""
    f = results.figures
    lines = report_header(meta, named_caches)
    if any(k in f for k in ("archive_build", "archive_shards", "baseline")):
        lines.append("1. Critical path: archive mode vs every shard building its own binaries on ARM64")
        for key, section in (("archive_build", report_archive), ("archive_shards", report_shards),
                             ("baseline", report_baseline)):
            if key in f:
                lines += section(f)
        if cp:
            lines += report_critical_paths(cp)
        lines.append("")
    if "incremental" in f and "archive_build" in f:
        lines += report_incremental(f) + [""]
    if "profiles" in f:
        lines += report_profiles(f) + [""]
    for name, error in results.errors.items():
        lines.append(f"ERR {name}:")
        lines.append(textwrap.indent(tail(error.strip(), 20), "    "))
    return "\n".join(lines)
