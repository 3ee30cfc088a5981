"""Crossbuild benchmark: archive mode against per-shard builds, incremental rebuilds, and the
four build profiles, on examples/cclib (6 test binaries, 122 cases, 4 ARM64 shards).

Run it with `benchmarks/run-crossbuild-benchmark [--json PATH]` (CPython 3.11). It prints
figures, never a pass or fail on time; the exit status is non-zero only when a figure could not
be measured at all (shown as ERR, with the reason).

How Pants is run: never in this repository. Each figure copies examples/cclib (sources and
BUILD, same relative layout) into a temporary Pants project whose pants.toml loads the plugin
from pants-plugins/ through `pythonpath`, with only the `pants.backend.experimental.cc` and
`crossbuild` backends, and whose root BUILD defines the repository's `local`, `linux_x86_64`
and `linux_arm64` environments. Pants 2.17.1 comes from .crossbuild/pants-2.17.1-venv and runs
with `--no-pantsd`, HOME in the temporary directory, and its own `--local-store-dir` per run
("fresh store": an empty directory). Every Pants run uses the machine's shared named caches
(~/.cache/pants/named_caches), whose `crossbuild_zig` cache holds zig's builds of libc, meant
to be a one-time cost per machine, target and optimisation mode and not part of what is
compared here. To be sure that cache is warm, each measured cold build is preceded by the same
build with another fresh store, whose time is reported as the "libc warm-up" and otherwise
discarded. (zig's own object cache cannot serve our compiles from that warm-up: every compile
and link command carries its sandbox path in `-ffile-prefix-map`, so it never repeats.)

zig keys its libc cache by the absolute path of its lib dir. The plugin therefore runs zig from
a copy of the toolchain placed once in that named cache (see
pants-plugins/crossbuild/toolchain.py), so a new Pants run reuses zig's libc builds; the
libc warm-up before each cold build covers that placement too.

Figures:

1. Critical path of an ARM64 test run, archive mode against per-shard builds.
   a. Archive mode. T_build_x86 = wall time of a cold `pants package examples/cclib:tests-arm64`
      on this x86-64 host (fresh store, no remote cache, warm zig libc cache). It includes
      Pants' start-up, fetching and extracting the pinned zig wheel into the fresh store, 12
      compiles and 6 links. Then `pants test --output=all examples/cclib:arm64` with remote
      execution on the embedded cluster (`reapi-bridge.pex up --concurrency 1`, a fresh state
      dir; one action at a time per executor, so each shard runs alone, as it would on its own
      machine) and a fresh store. Each shard's run time is the one Pants prints ("succeeded in
      N s"), which for a remote process is the executor's worker start to completion: input
      set-up, the run under the ARM64 executor, output upload. Critical path = T_build_x86 +
      max(shard run): the archive is built once, the 4 shards run in parallel on 4 machines.
   b. Baseline, "every shard compiles all its binaries itself on ARM64, no cache sharing".
      T_build_arm64 = wall time of compiling and linking the same 6 binaries inside the ARM64
      environment: the aarch64 `ziglang` wheel (same version and sha256 as the plugin's pin)
      run in the emulated aarch64 userland the ARM64 executor uses (busybox rootfs, proot,
      qemu-aarch64), with exactly the argv the plugin builds, taken from the plugin's
      crossbuild/zig_commands.py (its /bin/sh prefix-map wrapper, here calling zig where the
      wheel is unpacked instead of from the plugin's copy in its named cache;
      `zig cc -target aarch64-linux-musl -std=c11 -O2 -fno-ident ... -c`, then one link per
      test binary with the 6 library objects). 12 compiles run in parallel (--jobs, default
      the CPU count, as Pants' local parallelism), then 6 links in parallel. zig's libc cache
      in the userland is warmed first by a throwaway link of an empty main(); that link's time
      is reported as the cold libc build. No Pants overhead is included, which favours the
      baseline. Baseline critical path = T_build_arm64 + max(shard run).
      For reference, the same raw build runs natively on x86-64 (x86-64 wheel, own zig cache,
      warmed the same way): the ratio of the two is the emulation slow-down. Both raw builds'
      binaries are compared by sha256 with the ones in the Pants-built archive.
   This host is x86-64: "ARM64" here is qemu user-mode emulation under proot, much slower than
   real ARM64 hardware, so the reduction measured here is not the one real ARM64 machines give.

2. Warm incremental against cold. With the store of 1a's cold build: a no-op
   `pants package examples/cclib:tests-arm64` (nothing changed), then the same after appending
   one trivial case to examples/cclib/tests/ringbuf_test.c in the temporary copy. Each is timed
   and its Compile and Link processes counted (the plugin logs "Completed: Compile ..." and
   "Completed: Link ..." at INFO for every process that ran; cache hits are not logged).

3. Build profiles. For debug, release, release-lto and release-size: a cold `pants package` of
   a linux_arm64 archive of the same sources with that profile (fresh store, warm zig libc
   cache for that profile), its wall time and the size of every binary, from the
   "bin/x: N bytes" lines `pants package` prints.

The machine may be shared: the load average before and after is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

# pants_workspace first: it puts the plugin, the bridge and the test helpers on sys.path.
from pants_workspace import (
    BRIDGE_PEX,
    PANTS_PYTHON,
    Workspace,
    default_named_caches,
    elapsed,
    load_average,
    log,
    make_project,
    remove_tree,
)
from crossbuild_measure import (
    KEPT,
    Results,
    archive_build,
    archive_shards,
    baseline,
    critical_paths,
    incremental,
    profiles,
)
from crossbuild_report import report


def check_prerequisites() -> None:
    missing = []
    if not PANTS_PYTHON.is_file():
        missing.append(f"{PANTS_PYTHON} (run ./pants once to create the Pants venv)")
    if not BRIDGE_PEX.is_file():
        missing.append(f"{BRIDGE_PEX} (./pants package src/python/reapi_bridge:reapi-bridge)")
    if missing:
        sys.exit("crossbuild_benchmark: missing " + "; ".join(missing))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument(
        "--only", action="append", choices=("archive", "baseline", "incremental", "profiles"),
        help="measure only these figures (repeatable; default: all)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel processes of the raw zig builds (default: CPU count, as Pants)")
    parser.add_argument("--arm64-zig-cache", metavar="DIR", default=str(KEPT / "zig-cache-arm64"),
                        help="zig cache of the emulated build, kept across runs because the emulated libc build "
                             "takes 20+ minutes (default: %(default)s; the report says whether it was empty)")
    parser.add_argument("--wheel-dir", metavar="DIR", default=str(KEPT / "wheels"),
                        help="where the ziglang wheels are downloaded and unpacked, kept across runs since zig's "
                             "caches are keyed by its path (default: %(default)s)")
    parser.add_argument("--keep-temp", action="store_true", help="leave the temporary directory in place")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_prerequisites()
    selected = set(args.only or ("archive", "baseline", "incremental", "profiles"))
    root = Path(tempfile.mkdtemp(prefix="crossbuild-benchmark-", dir="/tmp"))
    root.chmod(0o755)
    ws = Workspace(root, default_named_caches())
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_before": load_average()}
    log(f"working in {root}")
    results = Results()
    try:
        if selected & {"archive", "incremental"}:
            project = make_project(root / "project-archive")
            results.measure("archive_build", lambda: archive_build(ws, project))
            if "archive" in selected and "archive_build" in results.figures:
                results.measure("archive_shards", lambda: archive_shards(ws, project))
            if "incremental" in selected and "archive_build" in results.figures:
                store = Path(results.figures["archive_build"]["store"])
                results.measure("incremental", lambda: incremental(ws, project, store))
        if "profiles" in selected:
            results.measure("profiles", lambda: profiles(ws))
        if "baseline" in selected:
            results.measure("baseline", lambda: baseline(ws, args))
    finally:
        meta["load_after"] = load_average()
        meta["total_seconds"] = elapsed()
        if not args.keep_temp:
            remove_tree(root)
    cp = critical_paths(results)
    print(report(results, cp, meta, ws.shared_named_caches))
    if args.json:
        payload = {"meta": {**meta, "named_caches": str(ws.shared_named_caches)}, **results.figures,
                   "critical_path": cp, "errors": results.errors}
        Path(args.json).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
