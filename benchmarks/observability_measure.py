"""The measuring half of the observability benchmark: the two bridges (metrics off, and
metrics on with the HTTP port up and scraped), the client workload run against both, and the
status page loaded in headless Chromium over 10,000 synthetic actions; the figures they give
(see observability_benchmark.py's docstring for what each figure is; observability_report.py
renders them)."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import grpc

from cas_measure import BenchError, Digest, Figure, Figures, describe
from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.client.client import Client
from reapi_bridge.config import BridgeConfig, ObservabilityConfig, ServerConfig
from reapi_bridge.observability.browser import find_chromium, render
from reapi_bridge.observability.interceptor import MetricsInterceptor
from reapi_bridge.observability.metrics import BridgeMetrics
from reapi_bridge.observability.synthetic import fill
from reapi_bridge.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)
from reapi_bridge_testing.bridge import BridgeProcess, running_bridge
from security_measure import (
    CHANNEL_OPTIONS,
    INSTANCE_NAME,
    READY_TIMEOUT_SECONDS,
    Server,
    action_digest,
    bench_updates,
    latency_figures,
    per_call_us,
    realistic_result,
)

# Execute calls per slice when alternating between the bridges.
EXECUTE_SLICE = 25
SCRAPE_INTERVAL_SECONDS = 1.0
# Virtual time given to `render` (browser.py) for one poll of the page: its next poll is a
# second (of virtual time) later, so the page is dumped after its first full draw.
RENDER_BUDGET_MS = 500
CHROMIUM_TIMEOUT_SECONDS = 120.0

SERVERS = ("off", "on")
LABELS = {"off": "metrics off", "on": "metrics on"}
DESCRIPTIONS = {
    "off": "[observability] metrics = false, no HTTP port",
    "on": '[observability] metrics = true, http_listen = "127.0.0.1:0", /metrics scraped once a second',
}
CONFIGS = {
    "off": "[observability]\nmetrics = false\nhttp_listen = \"\"\n",
    "on": "[observability]\nmetrics = true\nhttp_listen = \"127.0.0.1:0\"\n",
}

ActionResult = remote_execution_pb2.ActionResult


@dataclass(frozen=True)
class Workload:
    repetitions: int
    updates: int  # single-blob BatchUpdateBlobs calls per repetition, per mode
    concurrency: int
    execute_calls: int  # Execute calls in all, per server
    outputs: int  # output files of the cached result
    actions: int  # synthetic actions behind the page
    page_loads: int
    interceptor_calls: int


# --- the two bridges -----------------------------------------------------------------------


def start_server(name: str, root: Path, stack: ExitStack) -> Server:
    """`python -m reapi_bridge serve` with the config file of CONFIGS[name], plain text, auth off."""
    state_dir = root / name / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    config = root / f"{name}.toml"
    config.write_text(CONFIGS[name])
    process = BridgeProcess(state_dir, config=config)
    print(f"[{name}] starting: {' '.join(process.command)} serve --state-dir {state_dir} --config {config}",
          file=sys.stderr)
    address = process.start()
    stack.callback(process.stop)
    channel = open_channel(address, ClientAuth(), options=CHANNEL_OPTIONS)
    stack.callback(channel.close)
    grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT_SECONDS)
    stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
    stub.GetCapabilities(remote_execution_pb2.GetCapabilitiesRequest(instance_name=INSTANCE_NAME))
    print(f"[{name}] serving on {address}", file=sys.stderr)
    return Server(name, process, channel, Client(channel, INSTANCE_NAME))


def http_address(server: Server) -> str:
    """The HTTP port the bridge wrote to STATE_DIR/http-address once it was up."""
    path = server.process.state_dir / "http-address"
    if not path.exists():
        raise BenchError(f"{path} is missing: the bridge did not open its HTTP port")
    return path.read_text().strip()


class Scraper:
    """GET `url` every SCRAPE_INTERVAL_SECONDS in a thread, as Prometheus would; keeps the
    time and size of each response, and the first error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ms: List[float] = []
        self.sizes: List[int] = []
        self.error: Optional[str] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                start = time.perf_counter()
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    body = response.read()
                self.ms.append((time.perf_counter() - start) * 1000)
                self.sizes.append(len(body))
            except Exception as exc:  # noqa: BLE001 - reported under the table
                self.error = self.error or describe(exc)
            self._stop.wait(SCRAPE_INTERVAL_SECONDS)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def figures(self) -> Figures:
        if not self.ms:
            return {"scrapes": Figure(error=self.error or "no scrape finished")}
        return {
            "scrapes": Figure(value=len(self.ms)),
            "scrape_ms": Figure(value=statistics.median(self.ms)),
            "scrape_bytes": Figure(value=self.sizes[-1]),
        }


# --- Execute answered from the action cache ------------------------------------------------


def bench_execute(servers: Sequence[Server], workload: Workload, results: Dict[str, Figures]) -> None:
    """Stores one realistic result per server with UpdateActionResult (its outputs uploaded
    first), checks that Execute answers it from the cache, then times Execute round trips (the
    call and its one-message stream to the end) in slices alternating between the bridges;
    p50 and p95 in ms."""
    rng = random.Random(5)
    result, blobs = realistic_result(rng, workload.outputs)
    action = action_digest(rng)
    request = remote_execution_pb2.ExecuteRequest(
        instance_name=INSTANCE_NAME, action_digest=action.to_proto(Digest)
    )
    stubs = {}
    for server in servers:
        try:
            server.client.upload_batch(blobs)
            remote_execution_pb2_grpc.ActionCacheStub(server.channel).UpdateActionResult(
                remote_execution_pb2.UpdateActionResultRequest(
                    instance_name=INSTANCE_NAME, action_digest=action.to_proto(Digest), action_result=result
                )
            )
            stub = remote_execution_pb2_grpc.ExecutionStub(server.channel)
            operations = list(stub.Execute(request))
            response = remote_execution_pb2.ExecuteResponse()
            if not operations or not operations[-1].done or not operations[-1].response.Unpack(response):
                raise BenchError("Execute did not finish with an ExecuteResponse")
            if not response.cached_result or len(response.result.output_files) != workload.outputs:
                raise BenchError("Execute did not answer from the action cache")
            stubs[server.name] = stub
        except Exception as exc:  # noqa: BLE001 - reported in the table
            server.errors["execute_p50_ms"] = describe(exc)

    def execute(server: Server) -> None:
        for _operation in stubs[server.name].Execute(request):
            pass

    latency_figures(servers, results, "execute", workload.execute_calls, EXECUTE_SLICE, execute)


# --- the interceptor alone ----------------------------------------------------------------


def bench_interceptor(workload: Workload, results: Dict[str, Figures]) -> None:
    """In this process, no network: what gRPC runs per unary call to find its handler and call
    it, for a handler that does nothing: through MetricsInterceptor ("on": intercept_service,
    then the wrapped behavior with its count and histogram observation) and without ("off")."""
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = types.SimpleNamespace(
        method="/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs",
        invocation_metadata=(),
    )
    context = types.SimpleNamespace(code=lambda: None)
    interceptor = MetricsInterceptor(BridgeMetrics())

    def through(_):
        interceptor.intercept_service(lambda _details: handler, details).unary_unary(b"", context)

    def bare(_):
        (lambda _details: handler)(details).unary_unary(b"", context)

    for name, fn in (("off", bare), ("on", through)):
        try:
            results[name]["interceptor_us"] = Figure(value=statistics.median(per_call_us(workload.interceptor_calls, fn)))
        except Exception as exc:  # noqa: BLE001 - reported in the table
            results[name]["interceptor_us"] = Figure(error=describe(exc))


# --- the page in headless Chromium ---------------------------------------------------------


class Body(HTMLParser):
    """The attributes of the DOM's <body>."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: Dict[str, Optional[str]] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.attrs = dict(attrs)


def body_attrs(dom: str) -> Dict[str, Optional[str]]:
    parser = Body()
    parser.feed(dom)
    return parser.attrs


def first_render_ms(dom: str) -> float:
    attrs = body_attrs(dom)
    if attrs.get("data-first-render-ms") is None:
        raise BenchError(f"no data-first-render-ms on <body> (attributes {attrs}): the page never drew")
    return float(attrs["data-first-render-ms"])


# Runs in the page before its own scripts: when app.js sets data-first-render-ms (the end of
# its first full draw), notes performance.now() (from navigation start), then again after two
# animation frames (the draw on screen).
DRAW_WATCH = """
new MutationObserver((_, observer) => {
  if (!document.body || document.body.dataset.firstRenderMs === undefined) return;
  observer.disconnect();
  window.__benchDrawn = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => { window.__benchPainted = performance.now(); }));
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-first-render-ms"] });
"""
READ_MARKS = "JSON.stringify([window.__benchDrawn ?? null, window.__benchPainted ?? null])"


class DevTools:
    """Headless Chromium driven through the DevTools protocol on a pipe (--remote-debugging-pipe:
    it reads commands from its fd 3 and answers on fd 4, each message JSON ended by a NUL), in
    real time: no virtual-time budget."""

    def __init__(self, chromium: str, profile: Path, size=(1400, 900)) -> None:
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # bash puts the two pipe ends on fds 3 and 4 (pass_fds keeps their numbers, not 3 and 4).
        argv = [
            "bash", "-c", 'exec "$@" 3<&"$CDP_IN" 4>&"$CDP_OUT"', "bash",
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}", "--remote-debugging-pipe", "about:blank",
        ]
        env = dict(os.environ, CDP_IN=str(commands_read), CDP_OUT=str(answers_write))
        self.proc = subprocess.Popen(
            argv, env=env, pass_fds=(commands_read, answers_write), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._next_id = 0
        self._buffer = b""
        self.session: Optional[str] = None

    def call(self, method: str, params: Optional[dict] = None, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + CHROMIUM_TIMEOUT_SECONDS
        while True:
            while b"\0" not in self._buffer:
                if time.monotonic() > deadline:
                    raise BenchError(f"chromium did not answer {method}")
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise BenchError(f"chromium closed the DevTools pipe (exit {self.proc.poll()})")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:  # events are skipped
                if "error" in answer:
                    raise BenchError(f"chromium: {method}: {answer['error']}")
                return answer["result"]

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - it is killed below
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._commands)
        os.close(self._answers)


def load_in_real_time(chromium: str, url: str, profile: Path) -> Dict[str, float]:
    """One fresh browser loading `url` with DRAW_WATCH, polled until the draw is on screen; the
    page's own data-first-render-ms read from <body> of the DOM then, and the watch's times."""
    browser = DevTools(chromium, profile)
    try:
        browser.open_page()
        browser.call("Page.enable")
        browser.call("Page.addScriptToEvaluateOnNewDocument", {"source": DRAW_WATCH})
        browser.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + CHROMIUM_TIMEOUT_SECONDS
        while True:
            drawn, painted = json.loads(browser.evaluate(READ_MARKS) or "[null, null]")
            if painted is not None:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the page did not draw within {CHROMIUM_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.01)
        dom = browser.evaluate("document.documentElement.outerHTML")
        return {"page_ms": first_render_ms(dom), "drawn_ms": drawn, "painted_ms": painted}
    finally:
        browser.close()


def fetch_timed(url: str) -> tuple:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return (time.perf_counter() - start) * 1000, body


def bench_page(workload: Workload, work_dir: Path, results: Dict[str, Figures]) -> None:
    """An in-process bridge with its HTTP port, `workload.actions` synthetic actions in its
    recorder; /api/actions?since=0 fetched and checked, then the page loaded in real time and
    through browser.render (virtual time), each `page_loads` times; medians."""
    figures = results["page"]
    chromium = find_chromium()
    if chromium is None:
        figures["real_page_ms"] = Figure(error="no chromium on PATH (Debian's `chromium`)")
        return
    config = BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=work_dir / "page" / "state", max_workers=8),
        observability=ObservabilityConfig(http_listen="127.0.0.1:0"),
    )
    with running_bridge(config) as bridge:
        fill(bridge.recorder, workload.actions)
        base = bridge.http.address
        try:
            ms, sizes = [], []
            for _ in range(workload.page_loads):
                took, body = fetch_timed(base + "/api/actions?since=0")
                got = len(json.loads(body)["actions"])
                if got != workload.actions:
                    raise BenchError(f"/api/actions?since=0 gave {got} actions, not {workload.actions}")
                ms.append(took)
                sizes.append(len(body))
            figures["api_actions_ms"] = Figure(value=statistics.median(ms))
            figures["api_actions_bytes"] = Figure(value=sizes[-1])
        except Exception as exc:  # noqa: BLE001 - reported in the table
            figures["api_actions_ms"] = Figure(error=describe(exc))
        real: Dict[str, List[float]] = {"page_ms": [], "drawn_ms": [], "painted_ms": []}
        virtual: List[float] = []
        wall: List[float] = []
        errors: Dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="chromium-", dir=work_dir) as profiles:
            for i in range(workload.page_loads):
                try:
                    for key, v in load_in_real_time(chromium, base + "/", Path(profiles) / f"real-{i}").items():
                        real[key].append(v)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    errors.setdefault("real", describe(exc))
                try:
                    start = time.perf_counter()
                    dom = render(base + "/", budget_ms=RENDER_BUDGET_MS)
                    wall.append((time.perf_counter() - start) * 1000)
                    virtual.append(first_render_ms(dom))
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    errors.setdefault("virtual", describe(exc))
            # The same browser run on an empty page: what `render` costs without the page.
            blank: List[float] = []
            for _ in range(workload.page_loads):
                try:
                    start = time.perf_counter()
                    render("about:blank", budget_ms=RENDER_BUDGET_MS)
                    blank.append((time.perf_counter() - start) * 1000)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    errors.setdefault("virtual", describe(exc))
    for key, figure in (("page_ms", "real_page_ms"), ("drawn_ms", "real_drawn_ms"), ("painted_ms", "real_painted_ms")):
        figures[figure] = Figure(value=statistics.median(real[key])) if real[key] else Figure(error=errors.get("real", "no samples"))
    for key, samples in (("virtual_page_ms", virtual), ("render_wall_ms", wall), ("blank_wall_ms", blank)):
        figures[key] = Figure(value=statistics.median(samples)) if samples else Figure(error=errors.get("virtual", "no samples"))


# --- the run -------------------------------------------------------------------------------

SERVER_FIGURES = (
    "update_rps_1", "update_rps_n", "update_server_cpu_us", "update_client_cpu_us",
    "execute_p50_ms", "execute_p95_ms",
)


def run(workload: Workload, work_dir: Path) -> Dict[str, Figures]:
    """Both bridges up at once (idle while the other is measured), /metrics of the "on" one
    scraped throughout, every figure interleaved between them; then the page."""
    results: Dict[str, Figures] = {name: {} for name in (*SERVERS, "scrape", "page")}
    with ExitStack() as stack:
        servers = []
        for name in SERVERS:
            try:
                servers.append(start_server(name, work_dir, stack))
            except Exception as exc:  # noqa: BLE001 - reported in the table
                for key in SERVER_FIGURES:
                    results[name][key] = Figure(error=f"bridge did not start: {describe(exc)}")
        scraper = None
        on = [s for s in servers if s.name == "on"]
        if on:
            try:
                scraper = Scraper(http_address(on[0]) + "/metrics")
                scraper.start()
                stack.callback(scraper.stop)
            except Exception as exc:  # noqa: BLE001 - reported in the table
                results["scrape"]["scrapes"] = Figure(error=describe(exc))
        if servers:
            print("[both] single-blob BatchUpdateBlobs", file=sys.stderr)
            bench_updates(servers, workload, results)
            print("[both] Execute answered from the action cache", file=sys.stderr)
            bench_execute(servers, workload, results)
        if scraper is not None:
            scraper.stop()
            results["scrape"].update(scraper.figures())
        for server in servers:
            if server.process.proc.poll() is not None:
                results[server.name]["server"] = Figure(
                    error=f"exited with {server.process.proc.returncode} during the run "
                    f"(log: {server.process.log_path})"
                )
    print("[in process] MetricsInterceptor", file=sys.stderr)
    bench_interceptor(workload, results)
    print(f"[page] {workload.actions:,} synthetic actions, headless Chromium", file=sys.stderr)
    bench_page(workload, work_dir, results)
    return results
