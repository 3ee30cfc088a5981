"""Incremental test loop benchmark: what one edited test file costs, and what one test case
costs on emulated ARM64 against native x86-64.

Run it with `benchmarks/run-incremental-benchmark [--json PATH] [--only loop|cases]`
(CPython 3.11). It prints figures and ratios, never a pass or fail on time.

1. The incremental loop, on a copy of examples/cclib in a temporary Pants project (as
   benchmarks/crossbuild_benchmark.py makes it), with pantsd warm, the embedded cluster up
   (`reapi-bridge.pex up`, its default slots per executor) and remote execution on, with the
   flags bin/main-job uses (`--no-local-cache`, remote cache and execution on the cluster).
   For each mode, in the same run:
     per-binary  the default: one test action per (shard, binary), binaries fork per case;
     per-shard   `--crossbuild-test-granularity=shard --no-crossbuild-test-fork-cases`: every
                 shard re-runs the whole archive, one process per case, with today's C runner;
     before      the plugin as it was at BASELINE_REV (`--baseline-rev`, read with `git archive`
                 into a second project): every shard re-ran the whole archive through
                 shard_runner.sh, several busybox processes per case (the nextest-archive
                 behaviour, as the issue measured it);
   The archives are built first (`pants package`, not measured). Then, per mode,
   `pants test --test-output=all examples/cclib::` three times: a priming run (every test action
   of this mode runs: the cold test phase, compared between the modes), a no-op run, then a run
   after appending one case to
   examples/cclib/tests/ringbuf_test.c (a new case name each time, so nothing is cached). Each
   run's wall time, and from Pants' output exactly which compiles and links ran and which test
   actions ran or came from the cache. The figure the issue asks for: edit(per-binary) /
   edit(before). The priming runs are the cold test phase of each mode.

2. Per-case overhead: a test binary of 200 trivial cases (crossbuild_test.h) and the shard
   runner, built with the pinned zig for x86-64 and aarch64, run natively and in the emulated
   aarch64 userland the ARM64 executor uses (busybox rootfs, proot, qemu-aarch64), each with
   the binary forking per case (`--run`) and with one `--exact` process per case. Per case: the
   mean of the JUnit testcase times (start of the case's process to its end, as the runner or
   harness measures it) and the whole runner's wall time / 200 (fixed costs included), each
   the lowest of 7 runs.

The machine may be shared: the load average before and after is printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crossbuild_benchmark import (  # noqa: E402
    BRIDGE_PEX,
    CCLIB,
    HARNESS_HEADER,
    PANTS_PYTHON,
    PLUGINS,
    REPO,
    BenchmarkError,
    Workspace,
    cluster,
    default_named_caches,
    load_average,
    log,
    make_project,
    remote_flags,
    tail,
)
from reapi_bridge.executor.arm64_userland import build_rootfs, host_runner  # noqa: E402

RUNNER_C = PLUGINS / "crossbuild" / "resources" / "shard_runner.c"
EDITED = f"{CCLIB}/tests/ringbuf_test.c"
TARGETS = f"{CCLIB}::"
# mode: (which plugin, extra flags)
MODES = {
    "per-binary": ("current", []),
    "per-shard": ("current", ["--crossbuild-test-granularity=shard", "--no-crossbuild-test-fork-cases"]),
    "before": ("baseline", []),
}
# The last commit before per-binary test actions and the C shard runner: every shard ran the
# whole archive with shard_runner.sh, several busybox processes per case.
BASELINE_REV = "0062045"
CASES = 200
RUNS = 7
TARGET_RATIO = 0.15
TARGET_SECONDS = 3.0
TARGET_EMULATED_MS = 5.0
TARGET_EMULATED_VS_NATIVE = 3.0


# --------------------------------------------------------------------------- 1. the loop


class Pantsd:
    """Pants with pantsd in one project, the same bootstrap options every time."""

    def __init__(self, project: Path, ws: Workspace, address: str) -> None:
        self.project = project
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ws.subdir("home")), "LANG": "C.UTF-8"}
        self.base = [
            # The console script, not `python -c`: pantsd starts itself again from sys.argv.
            str(PANTS_PYTHON.parent / "pants"),
            "--pantsd", f"--local-store-dir={ws.subdir('store')}",
            f"--named-caches-dir={ws.shared_named_caches}", f"--pants-workdir={project / '.pants.d'}",
            "--no-local-cache", *remote_flags(address),
        ]

    def run(self, *args: str) -> Dict:
        start = time.monotonic()
        proc = subprocess.run(self.base + list(args), cwd=self.project, env=self.env, capture_output=True, text=True)
        seconds = time.monotonic() - start
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise BenchmarkError(f"`pants {' '.join(args)}` exited {proc.returncode}:\n{tail(out)}")
        return {"seconds": seconds, "log": out}

    def stop(self) -> None:
        pids = self.project / ".pids"
        for pidfile in pids.glob("**/pid"):
            with contextlib.suppress(Exception):
                os.kill(int(pidfile.read_text().strip()), 15)


def what_ran(log_text: str) -> Dict:
    actions = re.findall(r"^== (.+?): (ran|cached[^,]*), exit", log_text, re.M)
    return {
        "compiles": re.findall(r"Completed: Compile (\S+ for \S+)", log_text),
        "links": re.findall(r"Completed: Link (\S+ for \S+)", log_text),
        "test_actions_ran": sorted(a for a, how in actions if how == "ran") if actions else
        sorted(re.findall(r"(\S+#shard-\d+-of-\d+) succeeded in [\d.]+s \(ran ", log_text)),
        "test_actions_cached": len([a for a, how in actions if how != "ran"]) if actions else
        len(re.findall(r"#shard-\d+-of-\d+ succeeded in [\d.]+s \((?!ran )", log_text)),
        "shard_lines": re.findall(r"^.*#shard-\d+-of-\d+ (?:succeeded|failed).*$", log_text, re.M),
    }


def baseline_project(ws: Workspace, rev: str) -> Path:
    """The same temporary project, loading the plugin as it was at `rev`."""
    plugins = ws.subdir("baseline-plugin")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "pants-plugins"], capture_output=True)
    if archive.returncode != 0:
        raise BenchmarkError(f"cannot read pants-plugins at {rev}: {archive.stderr.decode()}")
    subprocess.run(["tar", "-x", "-C", str(plugins)], input=archive.stdout, check=True)
    project = make_project(ws.root / "project-baseline")
    toml = project / "pants.toml"
    toml.write_text(toml.read_text().replace(str(PLUGINS), str(plugins / "pants-plugins")))
    return project


def loop(ws: Workspace, baseline_rev: str) -> Dict:
    projects = {"current": make_project(ws.root / "project"), "baseline": baseline_project(ws, baseline_rev)}
    figures: Dict = {"baseline_rev": baseline_rev}
    with cluster(ws.subdir("cluster"), concurrency=None) as address:
        status = subprocess.run([sys.executable, str(BRIDGE_PEX), "status", "--bridge", address],
                                capture_output=True, text=True).stdout
        log(f"cluster slots:\n{status}")
        figures["cluster_status"] = status
        daemons = {name: Pantsd(project, ws, address) for name, project in projects.items()}
        try:
            for name, pants in daemons.items():
                log(f"{name} plugin: building the archives (not measured: every mode starts from built binaries)")
                pants.run("package", f"{CCLIB}:tests-arm64", f"{CCLIB}:tests-x86_64")
            for n, (mode, (which, flags)) in enumerate(MODES.items()):
                pants, edited = daemons[which], projects[which] / EDITED
                args = ["test", "--test-output=all", *flags, TARGETS]
                log(f"{mode}: priming")
                prime = pants.run(*args)
                log(f"{mode}: no-op")
                noop = pants.run(*args)
                edited.write_text(edited.read_text() + f"\nCB_TEST(benchmark_added_case_{n}) {{ CB_ASSERT(1); }}\n")
                log(f"{mode}: one case appended to {EDITED}")
                edit = pants.run(*args)
                if f"benchmark_added_case_{n}" not in edit["log"]:
                    raise BenchmarkError(f"{mode}: the added case did not run:\n{tail(edit['log'])}")
                figures[mode] = {
                    "prime_seconds": prime["seconds"],
                    "prime": what_ran(prime["log"]),
                    "noop_seconds": noop["seconds"],
                    "noop": what_ran(noop["log"]),
                    "edit_seconds": edit["seconds"],
                    "edit": what_ran(edit["log"]),
                }
                log(f"  no-op {noop['seconds']:.2f}s, edit {edit['seconds']:.2f}s")
        finally:
            for pants in daemons.values():
                pants.stop()
    for mode in MODES:
        if mode != "per-binary":
            figures[f"ratio_vs_{mode}"] = figures["per-binary"]["edit_seconds"] / figures[mode]["edit_seconds"]
    return figures


# --------------------------------------------------------------------------- 2. per case


def find_zig() -> str:
    override = os.environ.get("CROSSBUILD_ZIG")
    if override and Path(override).exists():
        return override
    for zig in sorted((REPO / ".crossbuild" / "ziglang-venv").glob("lib/python3*/site-packages/ziglang/zig")):
        return str(zig)
    raise BenchmarkError("no zig: run .ci/install-ziglang or set CROSSBUILD_ZIG")


def zig_cc(zig: str, arch: str, source: Path, out: Path) -> Path:
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR="/tmp/crossbuild-test-zig-cache", ZIG_LOCAL_CACHE_DIR=str(out.parent / ".zig"))
    subprocess.run([zig, "cc", "-target", f"{arch}-linux-musl", "-std=c11", "-O2", f"-I{HARNESS_HEADER.parent}",
                    str(source), "-o", str(out)], check=True, env=env, capture_output=True)
    return out


def run_cases(argv_for, box: Path, exec_per_case: bool) -> Dict:
    env = {"PATH": "/usr/bin:/bin", "TEST_SHARD_INDEX": "0", "TEST_TOTAL_SHARDS": "1"}
    if exec_per_case:
        env["CROSSBUILD_EXEC_PER_CASE"] = "1"
    (box / "out.xml").unlink(missing_ok=True)
    start = time.monotonic()
    proc = subprocess.run(argv_for(["./shard_runner", "bin/t", "0", "1", "hash", "60", "out.xml"]), cwd=box,
                          env=env, capture_output=True, text=True, start_new_session=True)
    wall = time.monotonic() - start
    if proc.returncode != 0 or not (box / "out.xml").exists():
        raise BenchmarkError(f"the runner exited {proc.returncode}:\n{tail(proc.stdout + proc.stderr)}")
    times = [float(c.get("time")) for c in ET.parse(box / "out.xml").getroot().iter("testcase")]
    if len(times) != CASES:
        raise BenchmarkError(f"expected {CASES} cases, got {len(times)}")
    return {"case_ms": 1000 * sum(times) / len(times), "wall_ms_per_case": 1000 * wall / CASES, "wall_seconds": wall}


def cases(ws: Workspace) -> Dict:
    zig = find_zig()
    src = ws.subdir("cases") / "trivial_test.c"
    src.write_text('#include "crossbuild_test.h"\n' + "".join(
        f"CB_TEST(trivial_{i:03d}) {{ CB_ASSERT_EQ_INT({i} + 1, {i + 1}); }}\n" for i in range(CASES)))
    rootfs = ws.root / "rootfs"
    host_arch = "aarch64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"
    if host_arch != "aarch64":
        build_rootfs(rootfs)
    arm64 = host_runner(rootfs)
    figures: Dict = {}
    for arch, label in ((host_arch, "native " + host_arch), ("aarch64", "emulated aarch64")):
        if arch == host_arch and label.startswith("emulated"):
            continue
        box = ws.subdir(f"cases/{arch}")
        (box / "bin").mkdir(exist_ok=True)
        log(f"building the runner and {CASES} trivial cases for {arch}")
        zig_cc(zig, arch, RUNNER_C, box / "shard_runner")
        zig_cc(zig, arch, src, box / "bin" / "t")
        if arch == host_arch:
            argv_for = lambda argv: argv  # noqa: E731
        else:
            argv_for = lambda argv, box=box: arm64.wrap(argv, cwd=box, binds=[box])  # noqa: E731
        for mode, exec_per_case in (("fork", False), ("exec", True)):
            runs = [run_cases(argv_for, box, exec_per_case) for _ in range(RUNS)]
            # The least disturbed of the runs, each figure on its own (the machine is shared).
            best = {key: min(r[key] for r in runs) for key in runs[0]}
            figures[f"{label}, {mode}"] = best
            log(f"  {label}, {mode}: {best['case_ms']:.2f} ms a case, {best['wall_ms_per_case']:.2f} ms with fixed costs")
    return figures


# --------------------------------------------------------------------------- report


def report(results: Dict) -> str:
    lines = [f"load average before: {results['load_before']}, after: {results['load_after']}", ""]
    if "loop" in results:
        f = results["loop"]
        lines.append("1. Incremental loop: `pants test examples/cclib::`, pantsd warm, cluster up, remote execution on")
        lines.append(f"   | mode | no-op | one case appended to ringbuf_test.c | compiles | links | test actions run | from the cache |")
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", choices=["loop", "cases"], action="append", help="measure only this part (repeatable)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary directory")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"the commit whose plugin is the `before` mode (default {BASELINE_REV})")
    args = parser.parse_args(argv)
    parts = args.only or ["loop", "cases"]
    if "loop" in parts and not BRIDGE_PEX.exists():
        raise SystemExit(f"{BRIDGE_PEX} is missing: ./pants package src/python/reapi_bridge:reapi-bridge")
    root = Path(tempfile.mkdtemp(prefix="crossbuild-incremental-"))
    root.chmod(0o755)  # the executors run actions as `nobody` when started as root
    ws = Workspace(root, default_named_caches())
    results: Dict = {"load_before": load_average()}
    status = 0
    try:
        for part, fn in (("loop", lambda w: loop(w, args.baseline_rev)), ("cases", cases)):
            if part in parts:
                try:
                    results[part] = fn(ws)
                except BenchmarkError as exc:
                    results[f"{part}_error"] = str(exc)
                    log(f"ERR {part}: {exc}")
                    status = 1
    finally:
        results["load_after"] = load_average()
        if not args.keep_temp:
            shutil.rmtree(root, ignore_errors=True)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
