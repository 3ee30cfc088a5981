"""The bridge's HTTP port: `/metrics` (Prometheus text format), `/` (a page that follows the
build farm live), and the JSON API behind the page. Nothing here changes state.

JSON API (all GET):
- `/api/summary`: executors (properties, slots busy/free), queues per platform, CAS size,
  action-cache hit rate, actions running and completed.
- `/api/actions?since=SEQ&limit=N`: finished actions after sequence number SEQ (oldest first,
  at most N, default 10000), each with its phases' wall-clock times, executor slot, platform,
  argv head, exit code, cached or not, and Pants run (`invocation`); `next` is the SEQ to ask
  from next time.
- `/api/invocations`: one row per Pants run (tool_invocation_id): action counts by ISA,
  start, end, and its critical path (sequence numbers and seconds).

With authentication on, every request needs a bearer token (an `Authorization: Bearer` header,
or `?token=` once, which the page keeps in a cookie) whose caller holds `read` on every
instance.
"""

from __future__ import annotations

import json
import logging
import pkgutil
import threading
from dataclasses import dataclass
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, urlparse

from reapi_bridge.observability.metrics import BridgeMetrics
from reapi_bridge.observability.recorder import ActionRecorder

logger = logging.getLogger(__name__)

PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8")}
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class ObservabilitySources:
    metrics: BridgeMetrics
    recorder: ActionRecorder
    read_state: Callable[[], dict]
    # (token or None) -> None if allowed, else why not (the Authorizer's check for `read`).
    check_token: Callable[[Optional[str]], Optional[str]]


def summary(state: dict) -> dict:
    cas, ac = state["cas"], state["action_cache"]
    lookups = ac.hits + ac.misses
    return {
        "executors": [
            {
                "name": d["name"],
                "properties": d["properties"],
                "slots": len(d["slots"]),
                "busy": sum(1 for s in d["slots"] if s["busy"]),
                "slot_ids": sorted(s["id"] for s in d["slots"]),
            }
            for d in state["executor_details"]
        ],
        "queues": state["queues"],
        "cas": {"blobs": cas.blob_count, "bytes": cas.total_bytes, "max_bytes": cas.max_bytes, "evicted": cas.evicted_blobs},
        "action_cache": {"entries": ac.entries, "hits": ac.hits, "misses": ac.misses,
                         "hit_rate": round(ac.hits / lookups, 4) if lookups else None},
        "running": state["running"],
        "completed": state["completed"],
    }


def make_handler(sources: ObservabilitySources):
    class Handler(BaseHTTPRequestHandler):
        server_version = "reapi-bridge"

        def log_message(self, fmt, *args):  # quiet: the bridge's log is for the bridge
            logger.debug("http %s " + fmt, self.client_address[0], *args)

        def _token(self, query) -> Optional[str]:
            header = self.headers.get("Authorization", "")
            if header.lower().startswith("bearer "):
                return header[7:].strip()
            if "token" in query:
                return query["token"][0]
            jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
            return jar["reapi_bridge_token"].value if "reapi_bridge_token" in jar else None

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            token = self._token(query)
            refused = sources.check_token(token)
            if refused is not None:
                return self._send(401, "text/plain; charset=utf-8", (refused + "\n").encode())
            extra = {}
            if "token" in query:
                extra["Set-Cookie"] = f"reapi_bridge_token={token}; HttpOnly; SameSite=Strict; Path=/"
            try:
                if url.path == "/metrics":
                    return self._send(200, PROMETHEUS_TYPE, sources.metrics.exposition())
                if url.path in PAGES:
                    name, kind = PAGES[url.path]
                    return self._send(200, kind, pkgutil.get_data(__package__, f"page/{name}"), extra)
                if url.path == "/api/summary":
                    return self._json(summary(sources.read_state()), extra)
                if url.path == "/api/actions":
                    since = _int(query, "since", 0)
                    limit = _int(query, "limit", 10000)
                    records = sources.recorder.since(since, limit)
                    nxt = records[-1].seq if records else since
                    return self._json({"next": nxt, "actions": [r.to_json() for r in records]}, extra)
                if url.path == "/api/invocations":
                    return self._json({"invocations": sources.recorder.invocations()}, extra)
            except ValueError as exc:
                return self._send(400, "text/plain; charset=utf-8", (str(exc) + "\n").encode())
            return self._send(404, "text/plain; charset=utf-8", b"not found; see /api/summary, /api/actions, /api/invocations, /metrics\n")

        def _json(self, body, extra=None):
            self._send(200, "application/json", json.dumps(body, separators=(",", ":")).encode(), extra)

        def _send(self, code: int, kind: str, body: bytes, extra=None):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _int(query, name: str, default: int) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name][0])
    except ValueError:
        raise ValueError(f"?{name}= must be a whole number, got {query[name][0]!r}") from None
    if value < 0:
        raise ValueError(f"?{name}= must not be negative")
    return value


class HttpEndpoint:
    def __init__(self, listen: str, sources: ObservabilitySources) -> None:
        host, _, port = listen.rpartition(":")
        self.server = ThreadingHTTPServer((host, int(port)), make_handler(sources))
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
