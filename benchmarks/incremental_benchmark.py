"""Incremental test loop benchmark: what one edited test file costs, and what one test case
costs on emulated ARM64 against native x86-64.

Run it with `benchmarks/run-incremental-benchmark [--json PATH] [--only loop|cases]`
(CPython 3.11). It prints figures and ratios, never a pass or fail on time.

1. The incremental loop, on a copy of examples/cclib in a temporary Pants project (as
   benchmarks/crossbuild_benchmark.py makes it: benchmarks/pants_workspace.py), with pantsd
   warm, the embedded cluster up (`reapi-bridge.pex up`, its default slots per executor) and
   remote execution on, with the flags bin/main-job uses (`--no-local-cache`, remote cache and
   execution on the cluster).
   For each mode, in the same run:
     per-binary-workers  the repository's default: one test action per (shard, binary),
                 binaries fork per case, and linux_arm64 asks for persistent workers
                 (persistentWorkerProtocol=proto), so the ARM64 executor runs the shard runner's
                 actions in one long-lived emulated session per slot;
     per-binary  the same, one-shot: a new proot + qemu session per test action;
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
   edit(before); and per-binary-workers / per-binary for the priming, no-op and edit runs. The
   priming runs are the cold test phase of each mode.

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
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

# pants_workspace first: it puts the plugin, the bridge and the test helpers on sys.path.
from pants_workspace import BRIDGE_PEX, BenchmarkError, Workspace, default_named_caches, load_average, log
from incremental_measure import BASELINE_REV, cases, loop
from incremental_report import report


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
