"""The measuring half of the storage benchmark: the servers, the client workload, the
machine's own limit, and the figures they give (see cas_benchmark.py's docstring for what each
figure is; cas_report.py renders them)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import grpc
import psutil

from reapi_bridge.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)
from reapi_bridge.client.client import Client

MIB = 1 << 20
MB = 1_000_000
CHUNK_BYTES = MIB
REPETITIONS = 3
FMB_RUNS = 5
INSTANCE_NAME = ""
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * MIB),
    ("grpc.max_receive_message_length", 64 * MIB),
]
# Batches are kept under this share of the advertised max_batch_total_size_bytes, leaving room
# for the digests and framing that the limit may or may not count.
BATCH_FILL = 0.9
DEFAULT_BATCH_LIMIT = 4 * MIB
RSS_SAMPLE_SECONDS = 0.05
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BGD = REPO_ROOT / ".crossbuild" / "buildgrid-venv" / "bin" / "bgd"
SERVERS = ("bridge", "buildgrid")
LABELS = {"bridge": "bridge", "buildgrid": "BuildGrid"}

Digest = remote_execution_pb2.Digest


class BenchError(Exception):
    """A measurement could not be made or gave a wrong answer; the message says why."""


@dataclass(frozen=True)
class Workload:
    blob_bytes: int
    present_blobs: int
    absent_blobs: int
    single_updates: int
    concurrency: int

    @property
    def blob_label(self) -> str:
        return f"{self.blob_bytes // MIB} MiB"


@dataclass
class Figure:
    """One measured number, or the reason there is none."""

    value: Optional[float] = None
    error: Optional[str] = None


Figures = Dict[str, Figure]


# --- small helpers -------------------------------------------------------------------------


def sha256_digest(data: bytes) -> Digest:
    return Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def small_blobs(rng: random.Random, count: int) -> List[Tuple[Digest, bytes]]:
    """Random blobs of 100-2,000 bytes, the size of the small files Pants uploads."""
    blobs = [rng.randbytes(rng.randint(100, 2000)) for _ in range(count)]
    return [(sha256_digest(blob), blob) for blob in blobs]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


def measure(figures: Figures, key: str, fn: Callable[[], float]) -> None:
    """Store fn()'s result under key, or the error it raised."""
    try:
        figures[key] = Figure(value=fn())
    except Exception as exc:  # noqa: BLE001 - every failure is reported in the table
        figures[key] = Figure(error=describe(exc))


def mb_per_s(size: int, seconds: float) -> float:
    return size / MB / seconds


def value(figures: Optional[Figures], key: str) -> Optional[float]:
    figure = (figures or {}).get(key)
    return figure.value if figure else None




# --- servers -------------------------------------------------------------------------------

BUILDGRID_CONFIG = """\
# BuildGrid as a remote cache only: CAS, ByteStream and ActionCache over one disk storage; no
# execution service, so no scheduler and no database. BuildGrid 0.4.4 advertises a fixed
# max_batch_total_size_bytes of 4 MiB - 1 KiB (buildgrid.server.settings.MAX_REQUEST_SIZE, not
# configurable), which is enough: the client splits its batches by the advertised limit.
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
# The bridge's default number of gRPC worker threads, so neither server is short of threads.
thread-pool-size: 64
storages:
  - !disk-storage &cas-storage
    path: {cas_dir}
caches:
  - !lru-action-cache &action-cache
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: true
instances:
  - name: ""
    services:
      - !action-cache
        cache: *action-cache
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
"""


def bridge_command(port: int, state_dir: Path) -> Tuple[List[str], Dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src" / "python"))
    argv = [sys.executable, "-m", "reapi_bridge", "serve"]
    argv += ["--listen", f"127.0.0.1:{port}", "--state-dir", str(state_dir)]
    return argv, env


def buildgrid_command(bgd: Path, port: int, state_dir: Path) -> Tuple[List[str], Dict[str, str]]:
    cas_dir = state_dir / "cas"
    cas_dir.mkdir(parents=True)
    config = state_dir / "bgd.yml"
    config.write_text(BUILDGRID_CONFIG.format(port=port, cas_dir=json.dumps(str(cas_dir))))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return [str(bgd), "server", "start", str(config)], env


class ServerProcess:
    """A server subprocess, its log file and a gRPC channel to it."""

    def __init__(self, argv: List[str], env: Dict[str, str], port: int, log: Path):
        self.address = f"127.0.0.1:{port}"
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=log.parent, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)

    def wait_ready(self) -> remote_execution_pb2.ServerCapabilities:
        stub = remote_execution_pb2_grpc.CapabilitiesStub(self.channel)
        request = remote_execution_pb2.GetCapabilitiesRequest(instance_name=INSTANCE_NAME)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                return stub.GetCapabilities(request, timeout=2)
            except grpc.RpcError as exc:
                last_error = describe(exc)
                time.sleep(0.2)
        raise BenchError(
            f"no GetCapabilities answer in {START_TIMEOUT_SECONDS:.0f}s ({last_error})"
        )

    def rss_bytes(self) -> int:
        proc = psutil.Process(self.proc.pid)
        total = 0
        for p in [proc] + proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def log_tail(self, lines: int = 8) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class RssSampler:
    """Samples a server's RSS every 50 ms in a thread while in a `with` block; keeps the peak."""

    def __init__(self, server: ServerProcess):
        self._server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0

    def _sample(self) -> None:
        try:
            self.peak = max(self.peak, self._server.rss_bytes())
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> "RssSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --- client workload -----------------------------------------------------------------------


def batches(limit: int, blobs: Sequence[Tuple[Digest, bytes]]) -> Iterator[List[Tuple[Digest, bytes]]]:
    """The blobs in BatchUpdateBlobs-sized groups, under BATCH_FILL of the server's `limit`."""
    budget = int(limit * BATCH_FILL)
    batch: List[Tuple[Digest, bytes]] = []
    used = 0
    for digest, data in blobs:
        cost = len(data) + 100
        if batch and used + cost > budget:
            yield batch
            batch, used = [], 0
        batch.append((digest, data))
        used += cost
    if batch:
        yield batch


def write_blob(client: Client, data: bytes, digest: Digest) -> None:
    client.stream_upload(data, digest)


def read_blob(client: Client, digest: Digest) -> None:
    """ByteStream Read of the whole blob, hashed as it arrives."""
    hasher, size = hashlib.sha256(), 0
    for chunk in client.stream_chunks(digest):
        hasher.update(chunk)
        size += len(chunk)
    if size != digest.size_bytes or hasher.hexdigest() != digest.hash:
        raise BenchError(f"read {size} bytes hashing {hasher.hexdigest()[:12]}..., not the blob")


def find_missing(client: Client, digests: Sequence[Digest]) -> List[Digest]:
    """One FindMissingBlobs call on the digests as they are (the figure is this call's time)."""
    request = remote_execution_pb2.FindMissingBlobsRequest(instance_name=INSTANCE_NAME, blob_digests=digests)
    return list(client.cas.FindMissingBlobs(request).missing_blob_digests)


def batch_limit(capabilities: remote_execution_pb2.ServerCapabilities) -> int:
    return capabilities.cache_capabilities.max_batch_total_size_bytes or DEFAULT_BATCH_LIMIT


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_writes(client: Client, size: int, written: List[Digest]) -> float:
    """Best MB/s of REPETITIONS writes, each of a fresh random blob; records what was written."""
    best = 0.0
    for _ in range(REPETITIONS):
        data = os.urandom(size)
        digest = sha256_digest(data)
        best = max(best, mb_per_s(size, timed(lambda: write_blob(client, data, digest))))
        written.append(digest)
    return best


def bench_reads(client: Client, written: List[Digest], size: int) -> float:
    if not written:
        raise BenchError("no blob was written")
    seconds = [timed(lambda: read_blob(client, written[i % len(written)])) for i in range(REPETITIONS)]
    return mb_per_s(size, min(seconds))


def bench_find_missing(client: Client, workload: Workload, limit: int) -> float:
    """Median ms of FindMissingBlobs over present + absent digests, shuffled together."""
    rng = random.Random(1)
    present = small_blobs(rng, workload.present_blobs)
    for batch in batches(limit, present):
        client.upload_batch(batch)
    absent = [digest for digest, _ in small_blobs(rng, workload.absent_blobs)]
    query = [d for d, _ in present] + absent
    rng.shuffle(query)
    expected = {(d.hash, d.size_bytes) for d in absent}
    seconds = []
    for _ in range(FMB_RUNS):
        start = time.perf_counter()
        missing = find_missing(client, query)
        seconds.append(time.perf_counter() - start)
        check_missing(missing, expected)
    return statistics.median(seconds) * 1000


def check_missing(missing: Sequence[Digest], expected: set) -> None:
    got = {(d.hash, d.size_bytes) for d in missing}
    if got != expected:
        raise BenchError(
            f"wrong answer: {len(got - expected)} present blobs reported missing, "
            f"{len(expected - got)} absent blobs not reported"
        )


def bench_single_updates(client: Client, workload: Workload) -> float:
    """Requests/s of one-blob BatchUpdateBlobs calls issued by `concurrency` threads."""
    blobs = small_blobs(random.Random(2), workload.single_updates)
    with ThreadPoolExecutor(max_workers=workload.concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(lambda blob: client.upload_batch([blob]), blobs))
        elapsed = time.perf_counter() - start
    return workload.single_updates / elapsed


def run_workload(
    server: ServerProcess, client: Client, limit: int, workload: Workload, figures: Figures
) -> None:
    written: List[Digest] = []
    measure(figures, "rss_idle_mib", lambda: server.rss_bytes() / MIB)
    with RssSampler(server) as rss:
        measure(figures, "write_mbps", lambda: bench_writes(client, workload.blob_bytes, written))
    figures["rss_write_mib"] = Figure(value=rss.peak / MIB)
    with RssSampler(server) as rss:
        measure(figures, "read_mbps", lambda: bench_reads(client, written, workload.blob_bytes))
    figures["rss_read_mib"] = Figure(value=rss.peak / MIB)
    figures["rss_growth_mib"] = rss_growth(figures)
    measure(figures, "fmb_ms", lambda: bench_find_missing(client, workload, limit))
    measure(figures, "single_update_rps", lambda: bench_single_updates(client, workload))


def rss_growth(figures: Figures) -> Figure:
    idle = value(figures, "rss_idle_mib")
    if idle is None:
        return Figure(error="no idle RSS")
    return Figure(value=max(figures["rss_write_mib"].value, figures["rss_read_mib"].value) - idle)


SERVER_FIGURES = (
    "write_mbps",
    "read_mbps",
    "fmb_ms",
    "single_update_rps",
    "rss_idle_mib",
    "rss_write_mib",
    "rss_read_mib",
    "rss_growth_mib",
)


def bench_server(
    name: str, args: argparse.Namespace, workload: Workload, work_dir: Path
) -> Figures:
    """Start one server with a fresh state dir, run the workload, stop it."""
    state_dir = work_dir / name
    state_dir.mkdir()
    port = free_port()
    if name == "bridge":
        argv, env = bridge_command(port, state_dir / "state")
    else:
        argv, env = buildgrid_command(Path(args.bgd).resolve(), port, state_dir)
    print(f"[{LABELS[name]}] starting: {' '.join(argv)}", file=sys.stderr)
    try:
        server = ServerProcess(argv, env, port, state_dir / "server.log")
    except OSError as exc:
        return {key: Figure(error=f"could not start: {describe(exc)}") for key in SERVER_FIGURES}
    figures: Figures = {}
    try:
        capabilities = server.wait_ready()
        print(
            f"[{LABELS[name]}] serving on {server.address}; running the workload", file=sys.stderr
        )
        run_workload(server, Client(server.channel, INSTANCE_NAME), batch_limit(capabilities), workload, figures)
        if server.proc.poll() is not None:
            error = f"exited with {server.proc.returncode} during the run: {server.log_tail()}"
            figures["server"] = Figure(error=error)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        figures = {
            key: Figure(error=f"server not ready: {describe(exc)}") for key in SERVER_FIGURES
        }
    finally:
        server.stop()
    return figures


# --- the machine's own limit ---------------------------------------------------------------


def write_file(path: Path, data: bytes, hasher: Optional["hashlib._Hash"]) -> None:
    view = memoryview(data)
    with open(path, "wb") as f:
        for offset in range(0, len(data), CHUNK_BYTES):
            chunk = view[offset : offset + CHUNK_BYTES]
            if hasher is not None:
                hasher.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def hash_only(data: bytes) -> None:
    hasher = hashlib.sha256()
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK_BYTES):
        hasher.update(view[offset : offset + CHUNK_BYTES])
    hasher.hexdigest()


def bench_machine(size: int, work_dir: Path) -> Figures:
    data = os.urandom(size)
    path = work_dir / "machine-limit.blob"
    cases = {
        "hash_write_fsync_mbps": lambda: write_file(path, data, hashlib.sha256()),
        "hash_mbps": lambda: hash_only(data),
        "write_fsync_mbps": lambda: write_file(path, data, None),
    }
    figures: Figures = {}
    for key, fn in cases.items():
        measure(figures, key, lambda: mb_per_s(size, min(timed(fn) for _ in range(REPETITIONS))))
    return figures
