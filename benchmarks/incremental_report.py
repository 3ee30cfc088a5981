"""The rendering half of the incremental test loop benchmark: the text report of the figures
incremental_measure.py gives (see incremental_benchmark.py's docstring for what they mean)."""

from __future__ import annotations

from typing import Dict

from incremental_measure import CASES, MODES, RUNS

TARGET_RATIO = 0.15
TARGET_SECONDS = 3.0
TARGET_EMULATED_MS = 5.0
TARGET_EMULATED_VS_NATIVE = 3.0


def report(results: Dict) -> str:
    lines = [f"load average before: {results['load_before']}, after: {results['load_after']}", ""]
    if "loop" in results:
        f = results["loop"]
        lines.append("1. Incremental loop: `pants test examples/cclib::`, pantsd warm, cluster up, remote execution on")
        lines.append("   | mode | no-op | one case appended to ringbuf_test.c | compiles | links | test actions run | from the cache |")
        lines.append("   | --- | --- | --- | --- | --- | --- | --- |")
        for mode in MODES:
            m = f[mode]
            e = m["edit"]
            lines.append(
                f"   | {mode} | {m['noop_seconds']:.2f} s | {m['edit_seconds']:.2f} s | {len(e['compiles'])} | "
                f"{len(e['links'])} | {len(e['test_actions_ran'])} | {e['test_actions_cached']} |"
            )
        lines.append(f"   edit, per-binary / before ({f['baseline_rev']}): {f['ratio_vs_before']:.3f}x (target <= {TARGET_RATIO}x); "
                     f"per-binary / per-shard: {f['ratio_vs_per-shard']:.3f}x; "
                     f"per-binary edit {f['per-binary']['edit_seconds']:.2f} s (target about {TARGET_SECONDS:.0f} s)")
        lines.append("   persistent workers on ARM64 (per-binary-workers) / one-shot (per-binary): "
                     + ", ".join(f"{phase} {f[f'workers_vs_one_shot_{phase}']:.2f}x" for phase in ("prime", "noop", "edit")))
        for mode in MODES:
            e = f[mode]["edit"]
            lines.append(f"   {mode}, after the edit: compiles {e['compiles']}; links {e['links']}; "
                         f"test actions that ran: {e['test_actions_ran']}")
            lines += [f"     {s.strip()}" for s in e["shard_lines"]]
        for mode in MODES:
            lines.append(f"   {mode}, cold test run (binaries built, every test action runs): {f[mode]['prime_seconds']:.2f} s")
            lines += [f"     {s.strip()}" for s in f[mode]["prime"]["shard_lines"]]
        lines.append("")
    if "cases" in results:
        f = results["cases"]
        lines.append(f"2. Per case, a binary of {CASES} trivial cases (lowest of {RUNS} runs)")
        lines.append("   | where | mode | per case (process start to end) | per case incl. runner fixed costs |")
        lines.append("   | --- | --- | --- | --- |")
        for key, v in f.items():
            where, mode = key.split(", ")
            lines.append(f"   | {where} | {mode} | {v['case_ms']:.2f} ms | {v['wall_ms_per_case']:.2f} ms |")
        native = next((v for k, v in f.items() if k.startswith("native") and k.endswith("fork")), None)
        emulated = f.get("emulated aarch64, fork")
        native_exec = next((v for k, v in f.items() if k.startswith("native") and k.endswith("exec")), None)
        if native and emulated:
            lines.append(f"   emulated fork: {emulated['case_ms']:.2f} ms a case (target <= {TARGET_EMULATED_MS} ms); "
                         f"vs native fork {emulated['case_ms'] / max(native['case_ms'], 1e-6):.1f}x, "
                         f"vs native exec {emulated['case_ms'] / max(native_exec['case_ms'], 1e-6):.1f}x "
                         f"(target <= {TARGET_EMULATED_VS_NATIVE}x native)")
        if emulated and "emulated aarch64, exec" in f:
            lines.append(f"   emulated exec / emulated fork: {f['emulated aarch64, exec']['case_ms'] / emulated['case_ms']:.1f}x")
    return "\n".join(lines)
