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
      qemu-aarch64), with exactly the argv the plugin builds (its /bin/sh prefix-map wrapper,
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
import concurrent.futures
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "pants-plugins"
PANTS_PYTHON = REPO / ".crossbuild" / "pants-2.17.1-venv" / "bin" / "python"
BRIDGE_PEX = REPO / "dist" / "reapi-bridge.pex"
ZIG_SUBSYSTEM = PLUGINS / "crossbuild" / "subsystems" / "zig.py"
HARNESS_HEADER = PLUGINS / "crossbuild" / "resources" / "crossbuild_test.h"
# What the benchmark keeps between runs: the ziglang wheels and the emulated zig's cache.
KEPT = Path.home() / ".cache" / "crossbuild-benchmark"

sys.path.insert(0, str(PLUGINS))
sys.path.insert(0, str(REPO / "src" / "python"))
from crossbuild.platforms import PLATFORMS, PROFILES  # noqa: E402  (no Pants imports in there)
from reapi_bridge.executor.arm64_userland import Arm64Userland, NativeRunner, build_rootfs  # noqa: E402

CCLIB = "examples/cclib"
ARCHIVE = f"{CCLIB}:tests-arm64"
SHARDED_TESTS = f"{CCLIB}:arm64"
SHARDS = 4
CASES = 122
PLATFORM = "linux_arm64"  # as examples/cclib:tests-arm64
PROFILE = "release"
LIBC = "musl"
PROFILE_ORDER = ("debug", "release", "release-lto", "release-size")
INCREMENTAL_FILE = f"{CCLIB}/tests/ringbuf_test.c"
ADDED_CASE = "\nCB_TEST(benchmark_added_case) { CB_ASSERT(1); }\n"
TARGET_REDUCTION_PERCENT = 40.0

# As in pants-plugins/crossbuild/build.py and toolchain.py: the toolchain's folder, the harness
# header's, and the prefix maps of the sandbox and toolchain paths. (The plugin's wrapper first
# places the toolchain at a fixed path in its named cache; here the unpacked wheel already is
# at a fixed path, so only the prefix maps are repeated.)
ZIG_DIR = "__crossbuild_zig"
ZIG_EXE = f"{ZIG_DIR}/ziglang/zig"
HARNESS_DIR = "__crossbuild"
# zig is called by its real path, as the plugin does: zig keys its libc cache by where its lib
# dir is, and under proot the path it sees for itself is the one it was started by.
REPRODUCIBLE_SH = (
    'zig_real="$(cd ' + ZIG_DIR + ' && pwd -P)"; zig="$1"; shift; '
    'exec "$zig_real/${zig#' + ZIG_DIR + '/}" "$@" "-ffile-prefix-map=$PWD=." "-ffile-prefix-map=$zig_real=/zig"'
)
# `pip download --platform` tags for the pinned wheels, by Pants platform of the compiler host.
WHEEL_PLATFORM_TAGS = {"linux_x86_64": "manylinux2010_x86_64", "linux_arm64": "manylinux2014_aarch64"}

PANTS_TOML = """\
[GLOBAL]
pants_version = "2.17.1"
pythonpath = ["{plugins}"]
backend_packages = ["pants.backend.experimental.cc", "crossbuild"]
remote_execution_append_only_caches_base_path = "/tmp/crossbuild-append-only-caches"
ca_certs_path = "/etc/ssl/certs/ca-certificates.crt"

[source]
root_patterns = ["/"]

[environments-preview.names]
local = "//:local"
linux_x86_64 = "//:linux_x86_64"
linux_arm64 = "//:linux_arm64"

[anonymous-telemetry]
enabled = false
"""

# The repository's root BUILD environments, without the fields of backends not loaded here
# (shell, python): executables are found by absolute path in every crossbuild action.
ROOT_BUILD = """\
local_environment(name="local")
remote_environment(
    name="linux_x86_64",
    platform="linux_x86_64",
    extra_platform_properties=["OSFamily=linux", "ISA=x86-64"],
    fallback_environment="local",
)
remote_environment(
    name="linux_arm64",
    platform="linux_arm64",
    extra_platform_properties=["OSFamily=linux", "ISA=arm-a64"],
    fallback_environment="local",
)
"""

PROFILE_TARGET = """
crossbuild_test_archive(
    name="bench-arm64-{profile}",
    sources=["tests/*_test.c"],
    dependencies=[":lib"],
    include_dirs=["examples/cclib/include"],
    platform="linux_arm64",
    profile="{profile}",
)
"""

_T0 = time.monotonic()


class BenchmarkError(RuntimeError):
    """A figure could not be measured."""


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def remove_tree(path: Path) -> None:
    """rmtree that also removes read-only folders (Pants' stores and zig's toolchain have them)."""

    def make_writable_and_retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            func(p)

    shutil.rmtree(path, onerror=make_writable_and_retry)
    shutil.rmtree(path, ignore_errors=True)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- temporary layout


@dataclass
class Workspace:
    """The benchmark's temporary directory: projects, stores, cluster state, raw builds."""

    root: Path
    shared_named_caches: Path
    _stores: int = 0

    def fresh_store(self, label: str) -> Path:
        self._stores += 1
        store = self.root / "stores" / f"{self._stores:02d}-{label}"
        store.mkdir(parents=True)
        return store

    def subdir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)  # the executors run actions as `nobody` when started as root
        return d


def default_named_caches() -> Path:
    """Pants' default named caches dir for the real user (our Pants runs get another HOME)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache_home) / "pants" / "named_caches"


def make_project(dest: Path, profile_targets: bool = False) -> Path:
    """A temporary Pants project with a copy of examples/cclib that loads the plugin."""
    dest.mkdir(parents=True)
    (dest / "pants.toml").write_text(PANTS_TOML.format(plugins=PLUGINS))
    (dest / "BUILD").write_text(ROOT_BUILD)
    shutil.copytree(REPO / CCLIB, dest / CCLIB)
    if profile_targets:
        with open(dest / CCLIB / "BUILD", "a") as build:
            for profile in PROFILE_ORDER:
                build.write(PROFILE_TARGET.format(profile=profile))
    return dest


# --------------------------------------------------------------------------- running Pants


PROCESS_LINE = re.compile(
    r"^(\d\d):(\d\d):(\d\d)\.(\d\d) \[INFO\] (Starting|Completed): (Compile|Link) (\S+) for ", re.M
)


@dataclass
class PantsRun:
    args: Tuple[str, ...]
    seconds: float
    log: str
    started_at: float  # time.time() when the Pants process was started

    def process_events(self, kind: str) -> List[Tuple[str, float]]:
        """[(Starting|Completed, seconds since Pants was started)] of the Compile or Link
        processes, from the timestamps (local time of day, 10 ms) of Pants' log lines."""
        t = time.localtime(self.started_at)
        start = t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + self.started_at % 1
        events = []
        for h, m, sec, cs, event, what, _ in PROCESS_LINE.findall(self.log):
            if what == kind:
                at = int(h) * 3600 + int(m) * 60 + int(sec) + int(cs) / 100
                events.append((event, (at - start) % 86400))
        return events

    def phase(self, kind: str) -> Optional[Dict[str, float]]:
        """First start and last completion of the Compile or Link processes, in seconds since
        Pants was started, and the span between them."""
        events = self.process_events(kind)
        starts = [t for e, t in events if e == "Starting"]
        ends = [t for e, t in events if e == "Completed"]
        if not starts or not ends:
            return None
        return {"first_start": min(starts), "last_end": max(ends), "seconds": max(ends) - min(starts)}

    def compiles(self) -> List[str]:
        return re.findall(r"Completed: Compile (\S+) for ", self.log)

    def links(self) -> List[str]:
        return re.findall(r"Completed: Link (\S+) for ", self.log)

    def binary_sizes(self) -> Dict[str, int]:
        return {m[0]: int(m[1].replace(",", "")) for m in re.findall(r"(bin/\S+): ([\d,]+) bytes", self.log)}

    def written_archive(self, project: Path) -> Path:
        found = re.findall(r"Wrote (dist/\S+\.tar)", self.log)
        if len(found) != 1:
            raise BenchmarkError(f"expected one `Wrote dist/....tar` line, found {found}")
        return project / found[0]


def pants(project: Path, store: Path, ws: Workspace, *args: str) -> PantsRun:
    """Runs Pants (no pantsd) in `project` with `store` as its local store; raises on failure."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ws.subdir("home")),
        "LANG": "C.UTF-8",
    }
    cmd = [
        str(PANTS_PYTHON),
        "-c",
        "from pants.bin.pants_loader import main; main()",
        "--no-pantsd",
        "--no-watch-filesystem",
        f"--local-store-dir={store}",
        f"--named-caches-dir={ws.shared_named_caches}",
        f"--pants-workdir={project / '.pants.d'}",
        "--print-stacktrace",
        *args,
    ]
    log(f"pants {' '.join(args)}  (project {project.name}, store {store.name})")
    started_at, start = time.time(), time.monotonic()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    output = proc.stdout + proc.stderr
    logs = ws.subdir("logs")
    (logs / f"{len(list(logs.iterdir())) + 1:02d}-{store.name}.log").write_text(output)
    if proc.returncode != 0:
        raise BenchmarkError(f"`pants {' '.join(args)}` exited {proc.returncode}:\n{tail(output)}")
    log(f"  done in {seconds:.1f}s")
    return PantsRun(tuple(args), seconds, output, started_at)


def cold_package(project: Path, ws: Workspace, target: str, label: str) -> Tuple[PantsRun, PantsRun, Path]:
    """(libc warm-up, measured cold build, its store): two `pants package` runs, each with a
    fresh store; the warm-up's store is deleted."""
    warm_store = ws.fresh_store(f"{label}-libc-warmup")
    warmup = pants(project, warm_store, ws, "package", target)
    remove_tree(warm_store)
    store = ws.fresh_store(label)
    return warmup, pants(project, store, ws, "package", target), store


def archive_binaries(archive: Path) -> Dict[str, str]:
    """{path in archive: sha256} from the archive's manifest."""
    with tarfile.open(archive) as tar:
        manifest = tar.extractfile("manifest.txt").read().decode()
    return {parts[1]: parts[2] for parts in (l.split() for l in manifest.splitlines()) if parts[0] == "binary"}


# --------------------------------------------------------------------------- the cluster


@contextlib.contextmanager
def cluster(state_dir: Path, concurrency: Optional[int] = 1):
    """The embedded bridge with one x86-64 and one ARM64 executor, `concurrency` slots each
    (None: `up`'s default); yields its address."""
    base = [sys.executable, str(BRIDGE_PEX)]
    up = base + ["up", "--state-dir", str(state_dir), "--listen", "127.0.0.1:0"]
    if concurrency is not None:
        up += ["--concurrency", str(concurrency)]
    log("reapi-bridge.pex up")
    proc = subprocess.run(up, capture_output=True, text=True)
    if proc.returncode != 0:
        subprocess.run(base + ["down", "--state-dir", str(state_dir)], capture_output=True)
        raise BenchmarkError(f"`reapi-bridge up` exited {proc.returncode}:\n{tail(proc.stdout + proc.stderr)}")
    address = proc.stdout.strip().splitlines()[-1]
    log(f"  cluster at {address}")
    try:
        yield address
    finally:
        log("reapi-bridge.pex down")
        subprocess.run(base + ["down", "--state-dir", str(state_dir)], capture_output=True)


def remote_flags(address: str) -> List[str]:
    return [
        "--remote-cache-read",
        "--remote-cache-write",
        f"--remote-store-address={address}",
        "--remote-execution",
        f"--remote-execution-address={address}",
    ]


def shard_times(run: PantsRun) -> Dict[str, float]:
    """{shard: seconds} from Pants' summary lines; checks every shard ran remotely on ARM64."""
    times = {}
    for line in run.log.splitlines():
        m = re.search(r"(\S+#shard-\d+-of-\d+) succeeded in ([\d.]+)s", line)
        if not m:
            continue
        if "ran in remote environment `linux_arm64`" not in line:
            raise BenchmarkError(f"a shard did not run on the ARM64 executor: {line.strip()}")
        times[m.group(1)] = float(m.group(2))
    if len(times) != SHARDS:
        raise BenchmarkError(f"expected {SHARDS} successful shards, found {sorted(times)}:\n{tail(run.log)}")
    cases = len(re.findall(r"^PASS bin/\S+::", run.log, flags=re.M))
    if cases != CASES:
        raise BenchmarkError(f"expected {CASES} passing cases over all shards, counted {cases}")
    return dict(sorted(times.items()))


# --------------------------------------------------------------------------- raw zig builds


@dataclass(frozen=True)
class Toolchain:
    """An unpacked `ziglang` wheel and how to run a command on its architecture."""

    label: str
    wheel_root: Path  # holds ziglang/zig
    runner: object  # NativeRunner or Arm64Userland: .wrap(argv, cwd=, binds=)
    binds: Tuple[Path, ...]


def pinned_wheels() -> Dict[str, Tuple[str, str]]:
    """{Pants platform: (version, sha256)} of the pinned ziglang wheels, read from the plugin."""
    text = ZIG_SUBSYSTEM.read_text()
    version = re.search(r'version = StrOption\(\s*default="([^"]+)"', text).group(1)
    pins = {}
    for ver, plat, sha in re.findall(r'"([\d.]+)\|(linux_\w+)\|([0-9a-f]{64})\|', text):
        if ver == version:
            pins[plat] = (ver, sha)
    return pins


def fetch_wheel(plat: str, dest: Path) -> Path:
    """Downloads (or reuses) the pinned ziglang wheel for `plat`, checks its sha256, unpacks it."""
    version, sha256 = pinned_wheels()[plat]
    downloads = dest / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    pattern = f"ziglang-{version}-*{'x86_64' if plat == 'linux_x86_64' else 'aarch64'}*.whl"
    if not list(downloads.glob(pattern)):
        log(f"pip download ziglang=={version} for {plat}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--platform", WHEEL_PLATFORM_TAGS[plat], f"ziglang=={version}", "-d", str(downloads)],
            check=True,
        )
    (wheel,) = downloads.glob(pattern)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != sha256:
        raise BenchmarkError(f"{wheel.name} has sha256 {digest}, the plugin pins {sha256}")
    root = dest / f"ziglang-{plat}"
    if not (root / "ziglang" / "zig").is_file():
        unzip(wheel, root)
    return root


def unzip(wheel: Path, dest: Path) -> None:
    """Extracts a wheel keeping the files' modes (zipfile alone drops the executable bits)."""
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            path = Path(z.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)


def compile_argv(source: str, obj: str, triple: str, profile: str) -> List[str]:
    """What pants-plugins/crossbuild/build.py runs for one C translation unit."""
    includes = [f"-I{d}" for d in (f"{CCLIB}/include", HARNESS_DIR)]
    return [
        "/bin/sh", "-c", REPRODUCIBLE_SH, "zig-cc", ZIG_EXE, "cc", "-target", triple, "-std=c11",
        *PROFILES[profile].compile_flags, "-fno-ident", "-fdiagnostics-color=never", *includes,
        "-c", source, "-o", obj,
    ]


def link_argv(objects: Sequence[str], exe: str, triple: str, profile: str) -> List[str]:
    """What pants-plugins/crossbuild/build.py runs to link one test binary."""
    p = PROFILES[profile]
    return [
        "/bin/sh", "-c", REPRODUCIBLE_SH, "zig-link", ZIG_EXE, "cc", "-target", triple,
        *p.compile_flags, *p.link_flags, *objects, "-o", exe,
    ]


def run_in(toolchain: Toolchain, argv: List[str], cwd: Path, zig_cache: Path) -> float:
    """Runs argv with `toolchain`'s runner in `cwd`; returns its wall time in seconds."""
    # A local cache per process: parallel compiles sharing one local cache failed under
    # proot+qemu ("error opening .../local/tmp/...o.d"). zig keeps libc in the global cache.
    local_cache = tempfile.mkdtemp(prefix=".zig-local-", dir=cwd)
    env = {
        "PATH": "/usr/bin:/bin",
        "ZIG_GLOBAL_CACHE_DIR": str(zig_cache / "global"),
        "ZIG_LOCAL_CACHE_DIR": local_cache,
    }
    cmd = toolchain.runner.wrap(argv, cwd=cwd, binds=toolchain.binds)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        error = BenchmarkError(
            f"{toolchain.label}: `{' '.join(argv[4:])}` exited {proc.returncode}:\n{tail(proc.stdout + proc.stderr)}"
        )
        error.seconds = seconds
        raise error
    return seconds


def raw_workdir(dest: Path, toolchain: Toolchain) -> Path:
    """A folder laid out like the plugin's sandboxes: the sources, the harness header, the zig."""
    (dest / CCLIB).mkdir(parents=True)
    for sub in ("src", "include", "tests"):
        shutil.copytree(REPO / CCLIB / sub, dest / CCLIB / sub)
    (dest / HARNESS_DIR).mkdir()
    shutil.copy(HARNESS_HEADER, dest / HARNESS_DIR / HARNESS_HEADER.name)
    (dest / ZIG_DIR).symlink_to(toolchain.wheel_root)
    return dest


def obj_path(source: str) -> str:
    return f"__obj/{PLATFORM}/{PROFILE}/{source}.o"


def parallel(jobs: int, fn: Callable, items: Sequence) -> List:
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def warm_libc(toolchain: Toolchain, dest: Path, zig_cache: Path) -> Dict[str, float]:
    """Compiles and links an empty main() for the target: the link builds zig's libc (musl,
    crt files, compiler_rt) into `zig_cache` unless it is already there."""
    work = raw_workdir(dest, toolchain)
    (work / "warm.c").write_text("int main(void) { return 0; }\n")
    triple = PLATFORMS[PLATFORM].triple(LIBC)
    compile_s = run_in(toolchain, compile_argv("warm.c", "warm.o", triple, PROFILE), work, zig_cache)
    link_s = run_in(toolchain, link_argv(["warm.o"], "warm", triple, PROFILE), work, zig_cache)
    return {"compile_seconds": compile_s, "link_seconds": link_s}


# What the emulation's flakes print (see raw_build).
FLAKE_SIGNS = (".o.d", "No such file or directory")


def raw_build(toolchain: Toolchain, dest: Path, zig_cache: Path, jobs: int) -> Dict:
    """Compiles the library and test sources of examples/cclib and links the 6 test binaries,
    as the plugin does, `jobs` processes at a time; returns times and the binaries' sha256."""
    work = raw_workdir(dest, toolchain)
    triple = PLATFORMS[PLATFORM].triple(LIBC)
    library = sorted(f"{CCLIB}/src/{p.name}" for p in (work / CCLIB / "src").glob("*.c"))
    tests = sorted(f"{CCLIB}/tests/{p.name}" for p in (work / CCLIB / "tests").glob("*_test.c"))
    for source in library + tests:
        (work / obj_path(source)).parent.mkdir(parents=True, exist_ok=True)
    out_dir = work / "__bin" / PLATFORM / PROFILE
    out_dir.mkdir(parents=True)

    failures: List[str] = []

    def flaky(what: str, argv: List[str]) -> float:
        # Under proot+qemu, a zig process running beside another now and then fails to find a
        # file that exists (its own "tmp/...o.d", or a libc archive in the warm cache); alone
        # it passes. Such a process is run again, the failed attempt's time included, and the
        # report lists every one.
        spent = 0.0
        for attempt in range(3):
            try:
                return spent + run_in(toolchain, argv, work, zig_cache)
            except BenchmarkError as e:
                if attempt == 2 or not any(sign in str(e) for sign in FLAKE_SIGNS):
                    raise
                failures.append(what)
                spent += getattr(e, "seconds", 0.0)
        raise AssertionError("unreachable")

    def compile_one(source: str) -> float:
        return flaky(Path(source).name, compile_argv(source, obj_path(source), triple, PROFILE))

    def link_one(test: str) -> float:
        objects = [obj_path(test), *(obj_path(s) for s in library)]
        exe = f"__bin/{PLATFORM}/{PROFILE}/{Path(test).stem}"
        return flaky(f"link {Path(test).stem}", link_argv(objects, exe, triple, PROFILE))

    start = time.monotonic()
    compile_times = parallel(jobs, compile_one, library + tests)
    compiled = time.monotonic()
    link_times = parallel(jobs, link_one, tests)
    done = time.monotonic()
    return {
        "seconds": done - start,
        "compile_phase_seconds": compiled - start,
        "link_phase_seconds": done - compiled,
        "compiles": len(compile_times),
        "links": len(link_times),
        "max_compile_seconds": max(compile_times),
        "max_link_seconds": max(link_times),
        "processes_run_again": failures,
        "binaries_sha256": {
            f"bin/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out_dir.iterdir())
        },
    }


def raw_figures(toolchain: Toolchain, dest: Path, zig_cache: Path, jobs: int) -> Dict:
    """Cold libc build (throwaway link), then the timed build with the warm cache."""
    fresh_cache = not any(zig_cache.glob("*/*"))
    zig_cache.mkdir(parents=True, exist_ok=True)
    log(f"{toolchain.label}: throwaway link (libc build; zig cache {'empty' if fresh_cache else 'reused'})")
    warm = warm_libc(toolchain, dest / "warm", zig_cache)
    log(f"  {warm['link_seconds']:.1f}s; now the build, {jobs} at a time")
    build = raw_build(toolchain, dest / "build", zig_cache, jobs)
    log(f"  {build['seconds']:.1f}s")
    return {"libc_warmup": {**warm, "zig_cache_was_empty": fresh_cache, "zig_cache": str(zig_cache)}, "build": build}


# --------------------------------------------------------------------------- the figures


@dataclass
class Results:
    figures: Dict[str, Dict] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)

    def measure(self, name: str, fn: Callable[[], Dict]) -> None:
        try:
            self.figures[name] = fn()
        except Exception as exc:  # a figure that failed is reported, the others still run
            detail = str(exc) if isinstance(exc, BenchmarkError) else traceback.format_exc()
            self.errors[name] = detail
            log(f"{name}: ERR\n{detail}")


def archive_build(ws: Workspace, project: Path) -> Dict:
    warmup, cold, store = cold_package(project, ws, ARCHIVE, "archive-cold")
    return {
        "libc_warmup_seconds": warmup.seconds,
        "cold_build_seconds": cold.seconds,
        "compile_phase": cold.phase("Compile"),
        "link_phase": cold.phase("Link"),
        "compiles": len(cold.compiles()),
        "links": len(cold.links()),
        "binary_sizes": cold.binary_sizes(),
        "binaries_sha256": archive_binaries(cold.written_archive(project)),
        "store": str(store),
    }


def archive_shards(ws: Workspace, project: Path) -> Dict:
    with cluster(ws.subdir("cluster")) as address:
        run = pants(project, ws.fresh_store("shards"), ws, *remote_flags(address), "test", "--output=all", SHARDED_TESTS)
    times = shard_times(run)
    return {"shard_seconds": times, "max_shard_seconds": max(times.values()), "test_run_wall_seconds": run.seconds}


def incremental(ws: Workspace, project: Path, store: Path) -> Dict:
    noop = pants(project, store, ws, "package", ARCHIVE)
    source = project / INCREMENTAL_FILE
    source.write_text(source.read_text() + ADDED_CASE)
    edited = pants(project, store, ws, "package", ARCHIVE)
    return {
        "noop": {"seconds": noop.seconds, "compiles": noop.compiles(), "links": noop.links()},
        "after_edit": {
            "seconds": edited.seconds,
            "compiles": edited.compiles(),
            "links": edited.links(),
            "compile_phase": edited.phase("Compile"),
            "link_phase": edited.phase("Link"),
        },
    }


def profiles(ws: Workspace) -> Dict:
    project = make_project(ws.root / "project-profiles", profile_targets=True)
    out = {}
    for profile in PROFILE_ORDER:
        warmup, cold, store = cold_package(project, ws, f"{CCLIB}:bench-arm64-{profile}", f"profile-{profile}")
        remove_tree(store)
        sizes = cold.binary_sizes()
        out[profile] = {
            "libc_warmup_seconds": warmup.seconds,
            "cold_build_seconds": cold.seconds,
            "link_phase": cold.phase("Link"),
            "compiles": len(cold.compiles()),
            "links": len(cold.links()),
            "binary_sizes": sizes,
            "total_bytes": sum(sizes.values()),
        }
    return out


def baseline(ws: Workspace, args) -> Dict:
    wheels = Path(args.wheel_dir).absolute()
    raw = ws.subdir("raw")
    userland = Arm64Userland.detect(build_rootfs(raw / "arm64-rootfs"))
    arm64_cache = Path(args.arm64_zig_cache).absolute()
    x86 = Toolchain("x86-64 native", fetch_wheel("linux_x86_64", wheels), NativeRunner(), ())
    arm64 = Toolchain(
        "aarch64 emulated", fetch_wheel("linux_arm64", wheels), userland,
        # Both the paths given and where they lead, should they be symbolic links.
        tuple(sorted({ws.root, wheels, wheels.resolve(), arm64_cache.parent, arm64_cache.parent.resolve(),
                      fetch_wheel("linux_arm64", wheels).resolve()})),
    )
    out = {
        "x86_64_native": raw_figures(x86, raw / "x86_64", raw / "zig-cache-x86_64", args.jobs),
        "arm64_emulated": raw_figures(arm64, raw / "arm64", arm64_cache, args.jobs),
        "jobs": args.jobs,
    }
    out["emulation_factor"] = out["arm64_emulated"]["build"]["seconds"] / out["x86_64_native"]["build"]["seconds"]
    return out


def critical_paths(results: Results) -> Optional[Dict]:
    """Both critical paths, and the reduction archive mode brings."""
    f = results.figures
    if not all(k in f for k in ("archive_build", "archive_shards", "baseline")):
        return None
    max_shard = f["archive_shards"]["max_shard_seconds"]
    baseline_path = f["baseline"]["arm64_emulated"]["build"]["seconds"] + max_shard

    def reduction(path: float) -> float:
        return 100.0 * (baseline_path - path) / baseline_path

    out = {
        "max_shard_seconds": max_shard,
        "baseline_seconds": baseline_path,
        "archive_mode_seconds": f["archive_build"]["cold_build_seconds"] + max_shard,
        "target_reduction_percent": TARGET_REDUCTION_PERCENT,
    }
    out["reduction_percent"] = reduction(out["archive_mode_seconds"])
    # The baseline has no Pants in it, while T_build_x86 spends its first seconds before any
    # compile (Pants' start-up without pantsd, fetching and unpacking the zig wheel into a fresh
    # store) - a fixed cost each shard building for itself would pay too. Shown both ways.
    phase = f["archive_build"].get("compile_phase")
    if phase:
        overhead = phase["first_start"]
        out["fixed_overhead_seconds"] = overhead
        same = baseline_path + overhead
        out["baseline_with_same_overhead_seconds"] = same
        out["reduction_same_overhead_percent"] = 100.0 * (same - out["archive_mode_seconds"]) / same
    return out


# --------------------------------------------------------------------------- the report

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


def report_header(ws: Workspace, meta: Dict) -> List[str]:
    return [
        "crossbuild benchmark: examples/cclib (6 test binaries, 122 cases), linux_arm64, 4 shards",
        f"host: {meta['machine']}, {meta['cpus']} CPUs; load average (1/5/15 min) before {meta['load_before']},"
        f" after {meta['load_after']}; whole run {meta['total_seconds']:.0f} s",
        f"Pants: 2.17.1, --no-pantsd, temporary projects; named caches shared ({ws.shared_named_caches},",
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


def report(results: Results, ws: Workspace, meta: Dict) -> str:
    f = results.figures
    lines = report_header(ws, meta)
    if any(k in f for k in ("archive_build", "archive_shards", "baseline")):
        lines.append("1. Critical path: archive mode vs every shard building its own binaries on ARM64")
        for key, section in (("archive_build", report_archive), ("archive_shards", report_shards),
                             ("baseline", report_baseline)):
            if key in f:
                lines += section(f)
        cp = critical_paths(results)
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


# --------------------------------------------------------------------------- main


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
        meta["total_seconds"] = time.monotonic() - _T0
        if not args.keep_temp:
            remove_tree(root)
    print(report(results, ws, meta))
    if args.json:
        payload = {"meta": {**meta, "named_caches": str(ws.shared_named_caches)}, **results.figures,
                   "critical_path": critical_paths(results), "errors": results.errors}
        Path(args.json).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
