"""The measuring half of the crossbuild benchmark: Pants runs on the temporary project, the
raw zig builds of the baseline, and the arithmetic over them, giving each figure as a dict
(see crossbuild_benchmark.py's docstring for what each figure means; crossbuild_report.py
renders them)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pants_workspace import CCLIB, HARNESS_HEADER, PANTS_PYTHON, PLUGINS, REPO, BenchmarkError, Workspace
from pants_workspace import cluster, log, make_project, remove_tree, tail
from pants_project import remote_flags, run_pants
from crossbuild.platforms import PLATFORMS  # no Pants imports in there
from crossbuild.zig_commands import SANDBOX_DIR, ZIG_DIR, binary_dir, fixed_zig_shell, object_path  # likewise
from crossbuild.zig_commands import compile_argv, link_argv
from reapi_bridge.executor.arm64_userland import Arm64Userland, NativeRunner, build_rootfs

ZIG_SUBSYSTEM = PLUGINS / "crossbuild" / "subsystems" / "zig.py"
# What the benchmark keeps between runs: the ziglang wheels and the emulated zig's cache.
KEPT = Path.home() / ".cache" / "crossbuild-benchmark"

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

# The raw builds run the plugin's own argv (crossbuild/zig_commands.py) in a folder laid out
# like its sandboxes: the sources, the harness header in SANDBOX_DIR, the unpacked wheel at
# ZIG_DIR. The plugin's shell first places the toolchain at a fixed path in its named cache;
# here the unpacked wheel already is at a fixed path, so zig is called from there, by its real
# path, as the plugin does: zig keys its libc cache by where its lib dir is, and under proot the
# path it sees for itself is the one it was started by.
ZIG_SHELL = fixed_zig_shell(ZIG_DIR)
# As examples/cclib:tests-arm64 gets them: its include_dirs, then the harness header's folder.
INCLUDE_DIRS = (f"{CCLIB}/include", SANDBOX_DIR)
# `pip download --platform` tags for the pinned wheels, by Pants platform of the compiler host.
WHEEL_PLATFORM_TAGS = {"linux_x86_64": "manylinux2010_x86_64", "linux_arm64": "manylinux2014_aarch64"}

# Appended to the copy of examples/cclib/BUILD: its linux_arm64 archive with another profile.
PROFILE_TARGET = (
    '\ncrossbuild_test_archive(name="bench-arm64-{profile}", sources=["tests/*_test.c"], dependencies=[":lib"],\n'
    '    include_dirs=["examples/cclib/include"], platform="linux_arm64", profile="{profile}")\n'
)


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
    home = ws.subdir("home")
    log(f"pants {' '.join(args)}  (project {project.name}, store {store.name})")
    started_at, start = time.time(), time.monotonic()
    proc = run_pants(project, store, *args, python=str(PANTS_PYTHON), home=home, named_caches=ws.shared_named_caches)
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
    for ver, plat, sha in re.findall(r'"([\d.]+)\|(linux_\w+)\|([0-9a-f]{64})[|"]', text):
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


def run_in(toolchain: Toolchain, argv: Sequence[str], cwd: Path, zig_cache: Path) -> float:
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
    (dest / SANDBOX_DIR).mkdir()
    shutil.copy(HARNESS_HEADER, dest / SANDBOX_DIR / HARNESS_HEADER.name)
    (dest / ZIG_DIR).symlink_to(toolchain.wheel_root)
    return dest


def obj_path(source: str) -> str:
    return object_path(PLATFORM, PROFILE, source)


def compile_command(source: str, obj: str, triple: str) -> Tuple[str, ...]:
    """What the plugin runs for one C translation unit of examples/cclib:tests-arm64."""
    return compile_argv(ZIG_SHELL, source, obj, triple=triple, profile=PROFILE, include_dirs=INCLUDE_DIRS)


def link_command(objects: Sequence[str], exe: str, triple: str) -> Tuple[str, ...]:
    """What the plugin runs to link one test binary of examples/cclib:tests-arm64."""
    return link_argv(ZIG_SHELL, objects, exe, triple=triple, profile=PROFILE)


def parallel(jobs: int, fn: Callable, items: Sequence) -> List:
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def warm_libc(toolchain: Toolchain, dest: Path, zig_cache: Path) -> Dict[str, float]:
    """Compiles and links an empty main() for the target: the link builds zig's libc (musl,
    crt files, compiler_rt) into `zig_cache` unless it is already there."""
    work = raw_workdir(dest, toolchain)
    (work / "warm.c").write_text("int main(void) { return 0; }\n")
    triple = PLATFORMS[PLATFORM].triple(LIBC)
    compile_s = run_in(toolchain, compile_command("warm.c", "warm.o", triple), work, zig_cache)
    link_s = run_in(toolchain, link_command(["warm.o"], "warm", triple), work, zig_cache)
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
    out_dir = work / binary_dir(PLATFORM, PROFILE)
    out_dir.mkdir(parents=True)

    failures: List[str] = []

    def flaky(what: str, argv: Sequence[str]) -> float:
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
        return flaky(Path(source).name, compile_command(source, obj_path(source), triple))

    def link_one(test: str) -> float:
        objects = [obj_path(test), *(obj_path(s) for s in library)]
        exe = f"{binary_dir(PLATFORM, PROFILE)}/{Path(test).stem}"
        return flaky(f"link {Path(test).stem}", link_command(objects, exe, triple))

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
    project = make_project(ws.root / "project-profiles")
    with open(project / CCLIB / "BUILD", "a") as build:
        for profile in PROFILE_ORDER:
            build.write(PROFILE_TARGET.format(profile=profile))
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
