"""The measuring half of the security benchmark: the two bridges (plain text, and TLS with a
bearer token and signed results), the client workload run against both, the in-process cost
of signing and verifying a result, and the figures they give (see security_benchmark.py's
docstring for what each figure is; security_report.py renders them)."""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import psutil

from cas_measure import (
    BenchError,
    Digest,
    Figure,
    Figures,
    describe,
    mb_per_s,
    read_blob,
    sha256_digest,
    small_blobs,
    timed,
    write_blob,
)
from reapi_bridge.auth.certs import issue
from reapi_bridge.auth.signing import (
    ResultVerifier,
    SigningKey,
    TrustedKey,
    public_key_text,
    sign_result,
    signatures_in,
)
from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.client.client import Client
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)
from reapi_bridge_testing.bridge import BridgeProcess

MIB = 1 << 20
INSTANCE_NAME = ""
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * MIB),
    ("grpc.max_receive_message_length", 64 * MIB),
]
READY_TIMEOUT_SECONDS = 90.0
# Calls per slice when alternating between the bridges (x4 for the threaded updates).
UPDATE_SLICE = 50
AC_SLICE = 25
EXECUTOR_NAME = "bench-executor"
TOKEN_NAME = "bench-admin"

SERVERS = ("plain", "secure")
LABELS = {"plain": "plain", "secure": "secure"}
DESCRIPTIONS = {
    "plain": "plain-text HTTP/2, [auth] off (the defaults)",
    "secure": "TLS, [auth] enabled with an admin bearer token, [[executor_keys]] "
    "+ require_signed_results (per-client limits at their defaults)",
}

ActionResult = remote_execution_pb2.ActionResult


@dataclass(frozen=True)
class Workload:
    blob_bytes: int
    repetitions: int
    updates: int  # single-blob BatchUpdateBlobs calls per repetition, per mode
    concurrency: int
    crypto_iterations: int
    ac_calls: int  # GetActionResult calls in all, per server
    outputs: int

    @property
    def blob_label(self) -> str:
        return f"{self.blob_bytes // MIB} MiB"


# --- the two bridges -----------------------------------------------------------------------


@dataclass
class Setup:
    """What the secure bridge is configured with, and what its client holds."""

    ca: Path
    token_file: Path
    key: SigningKey
    config: Path


def secure_setup(root: Path, state_dir: Path) -> Setup:
    """A CA and a server certificate for localhost and 127.0.0.1, an admin token in the state
    dir's tokens file (its secret in a 0600 file for the client), an executor signing key, and
    the config file naming them."""
    tls = issue(root / "tls", ["localhost", "127.0.0.1"])
    token, _ = TokenStore(state_dir / "tokens.json").create(TOKEN_NAME, ["admin"], ["*"])
    token_file = root / "admin.token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    key = SigningKey.generate()
    config = root / "secure.toml"
    # JSON strings are valid TOML basic strings for these values (paths, base64, hex).
    config.write_text(
        "[tls]\n"
        f"cert_chain = {json.dumps(str(tls.server_cert))}\n"
        f"private_key = {json.dumps(str(tls.server_key))}\n"
        "\n[auth]\n"
        "enabled = true\n"
        "require_signed_results = true\n"
        "\n[[executor_keys]]\n"
        f"id = {json.dumps(key.key_id)}\n"
        f"public_key = {json.dumps(public_key_text(key.public))}\n"
        f"executor = {json.dumps(EXECUTOR_NAME)}\n"
    )
    return Setup(tls.ca, token_file, key, config)


@dataclass
class Server:
    """A started bridge and the one client channel to it (threads share it, as in the CAS
    benchmark: gRPC multiplexes calls over one connection)."""

    name: str
    process: BridgeProcess
    channel: grpc.Channel
    client: Client
    errors: Dict[str, str] = field(default_factory=dict)


def start_server(name: str, root: Path, setup: Optional[Setup], stack: ExitStack) -> Server:
    state_dir = root / name / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    process = BridgeProcess(state_dir, config=setup.config if setup else None)
    print(f"[{name}] starting: {' '.join(process.command)} serve --state-dir {state_dir}"
          + (f" --config {setup.config}" if setup else ""), file=sys.stderr)
    address = process.start()
    stack.callback(process.stop)
    auth = ClientAuth(ca=setup.ca, token_file=setup.token_file) if setup else ClientAuth()
    channel = open_channel(address, auth, options=CHANNEL_OPTIONS)
    stack.callback(channel.close)
    grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT_SECONDS)
    stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
    stub.GetCapabilities(remote_execution_pb2.GetCapabilitiesRequest(instance_name=INSTANCE_NAME))
    print(f"[{name}] serving on {address}", file=sys.stderr)
    return Server(name, process, channel, Client(channel, INSTANCE_NAME))


# --- running a figure on both, interleaved -------------------------------------------------


def interleaved(
    servers: Sequence[Server], key: str, rounds: int, fn: Callable[[Server, int], List[float]]
) -> Dict[str, List[float]]:
    """fn(server, round) for each round on each server, the order alternating between rounds
    so that neither server always goes first; its samples per server. A server whose call
    fails records the error under `key` and is not asked again for this figure."""
    samples: Dict[str, List[float]] = {s.name: [] for s in servers}
    for r in range(rounds):
        for server in servers if r % 2 == 0 else list(reversed(servers)):
            if key in server.errors:
                continue
            try:
                samples[server.name] += fn(server, r)
            except Exception as exc:  # noqa: BLE001 - every failure is reported in the table
                server.errors[key] = describe(exc)
    return samples


@dataclass
class Tally:
    """One server's share of an alternate_slices run: wall time, its process's CPU time and
    this process's (the client's) CPU time, in seconds; and the samples the slices returned."""

    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    samples: List[float] = field(default_factory=list)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def alternate_slices(
    servers: Sequence[Server], key: str, items: Sequence, slice_size: int,
    fn: Callable[[Server, Sequence], List[float]],
) -> Dict[str, Tally]:
    """fn(server, slice) for consecutive slices of `items`, each slice on every server, the
    order alternating between slices: a change in the machine's load within a repetition falls
    on both. Failures are recorded under `key` as in interleaved()."""
    tallies = {s.name: Tally() for s in servers}
    me = psutil.Process()
    for i, begin in enumerate(range(0, len(items), slice_size)):
        part = items[begin : begin + slice_size]
        for server in servers if i % 2 == 0 else list(reversed(servers)):
            if key in server.errors:
                continue
            tally = tallies[server.name]
            try:
                proc = psutil.Process(server.process.proc.pid)
                server_cpu, client_cpu, start = cpu_seconds(proc), cpu_seconds(me), time.perf_counter()
                tally.samples += fn(server, part)
                tally.seconds += time.perf_counter() - start
                tally.server_cpu += cpu_seconds(proc) - server_cpu
                tally.client_cpu += cpu_seconds(me) - client_cpu
            except Exception as exc:  # noqa: BLE001 - every failure is reported in the table
                server.errors[key] = describe(exc)
    return tallies


def store(
    results: Dict[str, Figures], servers: Sequence[Server], key: str,
    samples: Dict[str, List[float]], reduce: Callable[[List[float]], float],
) -> None:
    for server in servers:
        if key in server.errors:
            results[server.name][key] = Figure(error=server.errors[key])
        elif not samples[server.name]:
            results[server.name][key] = Figure(error="no samples")
        else:
            results[server.name][key] = Figure(value=reduce(samples[server.name]))


def latency_figures(
    servers: Sequence[Server], results: Dict[str, Figures], prefix: str, calls: int, slice_size: int,
    call: Callable[[Server], object],
) -> None:
    """`call` made `calls` times per server, slices alternating between them; its round-trip
    p50 and p95 in ms stored as PREFIX_p50_ms and PREFIX_p95_ms. A server `call` cannot be made
    on (an error recorded under PREFIX_p50_ms during set-up) gets the same error for both."""
    p50, p95 = f"{prefix}_p50_ms", f"{prefix}_p95_ms"

    def timed_calls(server: Server, part: Sequence[int]) -> List[float]:
        samples = []
        for _ in part:
            start = time.perf_counter()
            call(server)
            samples.append((time.perf_counter() - start) * 1000)
        return samples

    live = [server for server in servers if p50 not in server.errors]
    tallies = alternate_slices(live, p50, range(calls), slice_size, timed_calls)
    samples = {s.name: tallies[s.name].samples if s.name in tallies else [] for s in servers}
    for server in servers:
        if p50 in server.errors:
            server.errors[p95] = server.errors[p50]
    store(results, servers, p50, samples, statistics.median)
    store(results, servers, p95, samples, lambda s: percentile(s, 0.95))


def percentile(samples: List[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- CAS throughput ------------------------------------------------------------------------


def bench_bytestream(servers: Sequence[Server], workload: Workload, results: Dict[str, Figures]) -> None:
    """Each repetition makes one fresh random blob and writes it to every server (their state
    dirs are separate, so nothing dedups); then every blob is read back from each."""
    written: Dict[str, List[Digest]] = {s.name: [] for s in servers}
    current: Dict[int, Tuple[bytes, Digest]] = {}  # this repetition's blob only

    def write(server: Server, r: int) -> List[float]:
        if r not in current:
            data = os.urandom(workload.blob_bytes)
            current.clear()
            current[r] = (data, sha256_digest(data))
        data, digest = current[r]
        seconds = timed(lambda: write_blob(server.client, data, digest))
        written[server.name].append(digest)
        return [mb_per_s(workload.blob_bytes, seconds)]

    samples = interleaved(servers, "write_mbps", workload.repetitions, write)
    store(results, servers, "write_mbps", samples, statistics.median)
    current.clear()

    def read(server: Server, r: int) -> List[float]:
        done = written[server.name]
        if not done:
            raise BenchError("no blob was written")
        digest = done[r % len(done)]
        return [mb_per_s(workload.blob_bytes, timed(lambda: read_blob(server.client, digest)))]

    samples = interleaved(servers, "read_mbps", workload.repetitions, read)
    store(results, servers, "read_mbps", samples, statistics.median)


def bench_updates(servers: Sequence[Server], workload: Workload, results: Dict[str, Figures]) -> None:
    """Single-blob BatchUpdateBlobs calls per second, from one thread and from `concurrency`
    threads; each repetition uploads new seeded blobs, the same ones to both servers, in
    slices that alternate between them. From the one-thread runs also each side's CPU time
    per call: the bridge's process, and this process (the client)."""
    per_rep: Dict[str, Dict[str, List[float]]] = {s.name: {} for s in servers}

    def sequential(server: Server, blobs: Sequence[Tuple[Digest, bytes]]) -> List[float]:
        for blob in blobs:
            server.client.upload_batch([blob])
        return []

    def concurrent(server: Server, blobs: Sequence[Tuple[Digest, bytes]]) -> List[float]:
        with ThreadPoolExecutor(max_workers=workload.concurrency) as pool:
            list(pool.map(lambda blob: server.client.upload_batch([blob]), blobs))
        return []

    modes = (("update_rps_1", sequential, UPDATE_SLICE, 1000), ("update_rps_n", concurrent, 4 * UPDATE_SLICE, 2000))
    for r in range(workload.repetitions):
        for key, fn, slice_size, seed in modes:
            blobs = small_blobs(random.Random(seed + r), workload.updates)
            tallies = alternate_slices(servers, key, blobs, slice_size, fn)
            for name, tally in tallies.items():
                figures = per_rep[name]
                figures.setdefault(key, []).append(workload.updates / tally.seconds)
                if key == "update_rps_1":
                    figures.setdefault("update_server_cpu_us", []).append(tally.server_cpu / workload.updates * 1e6)
                    figures.setdefault("update_client_cpu_us", []).append(tally.client_cpu / workload.updates * 1e6)
    for key, error_key in (
        ("update_rps_1", "update_rps_1"), ("update_rps_n", "update_rps_n"),
        ("update_server_cpu_us", "update_rps_1"), ("update_client_cpu_us", "update_rps_1"),
    ):
        for server in servers:
            if error_key in server.errors:
                server.errors[key] = server.errors[error_key]
        samples = {name: figures.get(key, []) for name, figures in per_rep.items()}
        store(results, servers, key, samples, statistics.median)


# --- signed results ------------------------------------------------------------------------


def realistic_result(rng: random.Random, outputs: int) -> Tuple[ActionResult, List[Tuple[Digest, bytes]]]:
    """An ActionResult as an executor reports a compile-and-archive action: `outputs` output
    files (objects, a few executables), stdout and stderr, and execution metadata with its
    timestamps; and the blobs it refers to, which must be in the CAS for it to be served."""
    blobs: List[Tuple[Digest, bytes]] = []

    def blob(size: int) -> Digest:
        data = rng.randbytes(size)
        digest = sha256_digest(data)
        blobs.append((digest, data))
        return digest

    result = ActionResult(exit_code=0)
    for i in range(outputs):
        executable = i % 7 == 0
        path = f"dist/bin/tool_{i:02d}" if executable else f"out/obj/src/module_{i:02d}.o"
        result.output_files.add(path=path, digest=blob(rng.randint(500, 8000)), is_executable=executable)
    result.stdout_digest.CopyFrom(blob(300))
    result.stderr_digest.CopyFrom(blob(1200))
    meta = result.execution_metadata
    meta.worker = f"{EXECUTOR_NAME}/slot-1"
    base = 1_700_000_000
    stamps = (
        meta.queued_timestamp, meta.worker_start_timestamp, meta.input_fetch_start_timestamp,
        meta.input_fetch_completed_timestamp, meta.execution_start_timestamp,
        meta.execution_completed_timestamp, meta.output_upload_start_timestamp,
        meta.output_upload_completed_timestamp, meta.worker_completed_timestamp,
    )
    for i, stamp in enumerate(stamps):
        stamp.FromNanoseconds(base * 10**9 + i * 37_000_000)
    return result, blobs


def action_digest(rng: random.Random) -> BlobDigest:
    action = remote_execution_pb2.Action(
        command_digest=sha256_digest(rng.randbytes(400)), input_root_digest=sha256_digest(rng.randbytes(900))
    )
    return BlobDigest.of(action.SerializeToString(deterministic=True))


def per_call_us(
    iterations: int, fn: Callable[[object], object], prepare: Callable[[], object] = lambda: None
) -> List[float]:
    """Microseconds of each fn(prepare()) call; prepare() is not timed."""
    samples = []
    for _ in range(iterations):
        arg = prepare()
        start = time.perf_counter_ns()
        fn(arg)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def bench_crypto(workload: Workload, key: SigningKey, results: Dict[str, Figures]) -> None:
    """In this process, no server: sign_result as the executor calls it, and the verifier each
    bridge runs on every GetActionResult hit: the secure one's (the trusted key, signatures
    required) on the signed result, the plain one's (no keys, not required) on the unsigned."""
    rng = random.Random(3)
    unsigned, _ = realistic_result(rng, workload.outputs)
    action = action_digest(rng)

    def fresh() -> ActionResult:
        copy = ActionResult()
        copy.CopyFrom(unsigned)
        return copy

    def sign(result: ActionResult) -> ActionResult:
        sign_result(result, key, instance=INSTANCE_NAME, action_digest=action, executor=EXECUTOR_NAME)
        return result

    secure = ResultVerifier([TrustedKey(key.key_id, key.public, EXECUTOR_NAME)], required=True)
    plain = ResultVerifier((), required=False)
    try:
        samples = per_call_us(workload.crypto_iterations, sign, fresh)
        results["secure"]["sign_us"] = Figure(value=statistics.median(samples))
    except Exception as exc:  # noqa: BLE001 - reported in the table
        results["secure"]["sign_us"] = Figure(error=describe(exc))
    signed = sign(fresh())
    for name, verifier, result in (("secure", secure, signed), ("plain", plain, unsigned)):
        try:
            problem = verifier.problem(INSTANCE_NAME, action, result)
            if problem is not None:
                raise BenchError(f"the {name} verifier refuses the result: {problem}")
            samples = per_call_us(
                workload.crypto_iterations, lambda r: verifier.problem(INSTANCE_NAME, action, r), lambda: result
            )
            results[name]["verify_us"] = Figure(value=statistics.median(samples))
        except Exception as exc:  # noqa: BLE001 - reported in the table
            results[name]["verify_us"] = Figure(error=describe(exc))


def bench_get_action_result(
    servers: Sequence[Server], workload: Workload, key: SigningKey, results: Dict[str, Figures]
) -> None:
    """Stores one realistic result per server with UpdateActionResult (its outputs uploaded
    first; on the secure bridge signed, written with the admin token), then times
    GetActionResult round trips in slices alternating between the bridges; p50 and p95 in ms."""
    rng = random.Random(4)
    result, blobs = realistic_result(rng, workload.outputs)
    action = action_digest(rng)
    request = remote_execution_pb2.GetActionResultRequest(
        instance_name=INSTANCE_NAME, action_digest=action.to_proto(Digest)
    )
    stubs = {}

    def prepare(server: Server, _r: int) -> List[float]:
        server.client.upload_batch(blobs)
        stored = ActionResult()
        stored.CopyFrom(result)
        if server.name == "secure":
            sign_result(stored, key, instance=INSTANCE_NAME, action_digest=action, executor=EXECUTOR_NAME)
        stub = remote_execution_pb2_grpc.ActionCacheStub(server.channel)
        stub.UpdateActionResult(
            remote_execution_pb2.UpdateActionResultRequest(
                instance_name=INSTANCE_NAME, action_digest=action.to_proto(Digest), action_result=stored
            )
        )
        got = stub.GetActionResult(request)
        if len(got.output_files) != workload.outputs or (server.name == "secure") != bool(signatures_in(got)):
            raise BenchError("GetActionResult did not return the stored result")
        stubs[server.name] = stub
        return []

    interleaved(servers, "ac_p50_ms", 1, prepare)

    latency_figures(servers, results, "ac", workload.ac_calls, AC_SLICE, lambda server: stubs[server.name].GetActionResult(request))


# --- the run -------------------------------------------------------------------------------

SERVER_FIGURES = (
    "write_mbps", "read_mbps", "update_rps_1", "update_rps_n", "update_server_cpu_us",
    "update_client_cpu_us", "ac_p50_ms", "ac_p95_ms",
)


def run(workload: Workload, work_dir: Path) -> Dict[str, Figures]:
    """Both bridges up at once (idle while the other is measured), every figure interleaved
    between them; then the in-process signing figures."""
    results: Dict[str, Figures] = {name: {} for name in SERVERS}
    setup = secure_setup(work_dir, work_dir / "secure" / "state")
    with ExitStack() as stack:
        servers = []
        for name in SERVERS:
            try:
                servers.append(start_server(name, work_dir, setup if name == "secure" else None, stack))
            except Exception as exc:  # noqa: BLE001 - reported in the table
                for key in SERVER_FIGURES:
                    results[name][key] = Figure(error=f"bridge did not start: {describe(exc)}")
        if servers:
            print("[both] ByteStream write and read", file=sys.stderr)
            bench_bytestream(servers, workload, results)
            print("[both] single-blob BatchUpdateBlobs", file=sys.stderr)
            bench_updates(servers, workload, results)
            print("[both] GetActionResult", file=sys.stderr)
            bench_get_action_result(servers, workload, setup.key, results)
        for server in servers:
            if server.process.proc.poll() is not None:
                results[server.name]["server"] = Figure(
                    error=f"exited with {server.process.proc.returncode} during the run "
                    f"(log: {server.process.log_path})"
                )
    print("[in process] sign_result and ResultVerifier.problem", file=sys.stderr)
    bench_crypto(workload, setup.key, results)
    return results
