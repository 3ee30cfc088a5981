"""The measuring half of the incremental test loop benchmark: the loop's Pants runs and the
per-case runs, each part's figures as a dict (see incremental_benchmark.py's docstring for what
they mean; incremental_report.py renders them)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict

from pants_workspace import BRIDGE_PEX, CCLIB, HARNESS_HEADER, PANTS_PYTHON, PLUGINS, REPO, BenchmarkError
from pants_workspace import Workspace, cluster, log, make_project, tail
from pants_project import bridge_command, remote_flags, run_pants
from reapi_bridge.executor.arm64_userland import build_rootfs, host_runner

RUNNER_C = PLUGINS / "crossbuild" / "resources" / "shard_runner.c"
EDITED = f"{CCLIB}/tests/ringbuf_test.c"
TARGETS = f"{CCLIB}::"
# mode: (which plugin, extra flags)
MODES = {
    "per-binary-workers": ("workers", []),
    "per-binary": ("current", []),
    "per-shard": ("current", ["--crossbuild-test-granularity=shard", "--no-crossbuild-test-fork-cases"]),
    "before": ("baseline", []),
}
# The last commit before per-binary test actions and the C shard runner: every shard ran the
# whole archive with shard_runner.sh, several busybox processes per case.
BASELINE_REV = "0062045"
CASES = 200
RUNS = 7


# --------------------------------------------------------------------------- 1. the loop


class Pantsd:
    """Pants with pantsd in one project, the same bootstrap options every time."""

    def __init__(self, project: Path, ws: Workspace, address: str) -> None:
        self.project = project
        self.home = ws.subdir("home")
        self.store = ws.subdir("store")
        self.named_caches = ws.shared_named_caches
        self.flags = ["--no-local-cache", *remote_flags(address)]

    def run(self, *args: str) -> Dict:
        start = time.monotonic()
        proc = run_pants(self.project, self.store, *self.flags, *args, python=str(PANTS_PYTHON), home=self.home,
                         named_caches=self.named_caches, pantsd=True)
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
    return make_project(ws.root / "project-baseline", plugin_root=plugins / "pants-plugins")


def loop(ws: Workspace, baseline_rev: str) -> Dict:
    projects = {
        "workers": make_project(ws.root / "project-workers", arm64_workers=True),
        "current": make_project(ws.root / "project"),
        "baseline": baseline_project(ws, baseline_rev),
    }
    figures: Dict = {"baseline_rev": baseline_rev}
    with cluster(ws.subdir("cluster"), concurrency=None) as address:
        status = subprocess.run(bridge_command("status", "--bridge", address, pex=BRIDGE_PEX),
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
    for phase in ("prime", "noop", "edit"):
        figures[f"workers_vs_one_shot_{phase}"] = (
            figures["per-binary-workers"][f"{phase}_seconds"] / figures["per-binary"][f"{phase}_seconds"]
        )
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
