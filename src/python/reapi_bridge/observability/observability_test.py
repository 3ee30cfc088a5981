"""Metrics, the JSON API and the page's files on a real bridge with a real executor: values
after known calls, Prometheus' own parser on /metrics, phases of finished actions, Pants-run
grouping with a critical path, and the read permission on the HTTP port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.config import AuthConfig, BridgeConfig, ExecutionConfig, ObservabilityConfig, ServerConfig
from reapi_bridge.observability.recorder import ActionRecorder, critical_path
from reapi_bridge_testing.bridge import client_for, execute, make_action, running_bridge, running_executor

X86 = {"OSFamily": "linux", "ISA": "x86-64"}


@pytest.fixture
def bridge_config(tmp_path) -> BridgeConfig:
    return BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=32),
        execution=ExecutionConfig(lease_timeout_seconds=5, unmatched_grace_seconds=5),
        observability=ObservabilityConfig(http_listen="127.0.0.1:0"),
    )


def fetch(url: str, token: str = ""):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples: dict, name: str, **labels) -> float:
    return all_samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_and_api_after_known_calls(bridge_config, open_dir):
    with running_bridge(bridge_config) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
        http = bridge.http.address
        assert (bridge.paths.root / "http-address").read_text().strip() == http
        with running_executor(f"127.0.0.1:{bridge.port}", open_dir, name="obs-x86"):
            ok = make_action(client, ["/bin/sh", "-c", "echo hi"], platform=X86)
            bad = make_action(client, ["/bin/sh", "-c", "exit 3"], platform=X86)
            assert execute(client, ok)[0].result.exit_code == 0
            assert execute(client, bad)[0].result.exit_code == 3
            assert execute(client, ok)[0].cached_result
        client.upload(b"x" * 5000)

        status, kind, body = fetch(f"{http}/metrics")
        assert status == 200 and kind.startswith("text/plain; version=0.0.4")
        m = samples(body.decode())
        platform = "ISA=x86-64, OSFamily=linux"
        assert value(m, "reapi_bridge_rpcs_total", service="Execution", method="Execute", code="OK") == 3
        assert value(m, "reapi_bridge_executions_total", platform=platform, executor="obs-x86", outcome="ok") == 1
        assert value(m, "reapi_bridge_executions_total", platform=platform, executor="obs-x86", outcome="failed") == 1
        assert value(m, "reapi_bridge_executions_total", platform="", executor="", outcome="cached") == 1
        assert value(m, "reapi_bridge_queue_seconds_count", platform=platform) == 2
        assert value(m, "reapi_bridge_cas_written_bytes_total") >= 5000
        assert value(m, "reapi_bridge_action_cache_hits_total") >= 1
        assert value(m, "reapi_bridge_cas_blobs") == bridge.cas.stats().blob_count
        assert value(m, "reapi_bridge_rpc_seconds_count", service="Execution", method="Execute") == 3

        _, kind, body = fetch(f"{http}/api/actions?since=0")
        assert kind == "application/json"
        actions = json.loads(body)
        ran = [a for a in actions["actions"] if not a["cached"]]
        assert sorted(a["exit_code"] for a in ran) == [0, 3]
        for a in ran:
            assert a["isa"] == "x86-64" and a["executor"].startswith("obs-x86/")
            assert a["queued"] <= a["worker_start"] <= a["exec_start"] <= a["exec_end"] <= a["upload_end"] <= a["completed"] + 1
            assert a["argv"][:2] == ["/bin/sh", "-c"]
        assert actions["next"] == max(a["seq"] for a in actions["actions"])
        assert json.loads(fetch(f"{http}/api/actions?since={actions['next']}")[2])["actions"] == []

        summary = json.loads(fetch(f"{http}/api/summary")[2])
        assert summary["action_cache"]["hits"] >= 1 and summary["completed"] == 2
        invocations = json.loads(fetch(f"{http}/api/invocations")[2])["invocations"]
        assert sum(r["actions"] for r in invocations) == 3

        page = fetch(f"{http}/")[2].decode()
        assert '<canvas id="timeline"' in page and "app.js" in page
        assert b"/api/actions?since=" in fetch(f"{http}/app.js")[2]
        with pytest.raises(urllib.error.HTTPError) as info:
            fetch(f"{http}/api/actions?since=soon")
        assert info.value.code == 400 and b"whole number" in info.value.read()


def test_the_http_port_needs_read_on_every_instance_when_auth_is_on(bridge_config):
    state = bridge_config.server.state_dir
    store = TokenStore(state / "tokens.json")
    reader, _ = store.create("viewer", ["reader"])
    writer, _ = store.create("uploader", ["cas-write"])
    config = replace(bridge_config, auth=AuthConfig(enabled=True))
    with running_bridge(config) as bridge:
        http = bridge.http.address
        for token, expected in (("", "anonymous callers"), (writer, "lacks the 'read' permission"), ("xb1.bad", "malformed")):
            with pytest.raises(urllib.error.HTTPError) as info:
                fetch(f"{http}/api/summary", token)
            assert info.value.code == 401 and expected in info.value.read().decode()
        assert fetch(f"{http}/metrics", reader)[0] == 200
        # ?token= once: the page keeps it in a cookie.
        with urllib.request.urlopen(f"{http}/?token={reader}", timeout=30) as response:
            assert "reapi_bridge_token=" in response.headers.get("Set-Cookie")


def test_critical_path_is_the_heaviest_chain_of_actions_one_after_another():
    rec = ActionRecorder()

    def add(start, end, name):
        start, end = 1000.0 + start, 1000.0 + end  # wall-clock seconds: never 0
        rec.add(operation=name, instance="", action="", platform="", isa="x86-64", executor="e/0", invocation="run",
                argv=(name,), exit_code=0, status=0, cached=False, queued=start, worker_start=start, fetch_start=0.0,
                fetch_end=0.0, exec_start=start, exec_end=end, upload_start=0.0, upload_end=0.0, completed=end)

    add(0, 1, "compile-a")
    add(0, 3, "compile-b")  # in parallel with a, longer
    add(3, 4, "link")
    add(1, 2, "short-after-a")
    add(4, 9, "test")
    path = critical_path(rec.since(0))
    assert [r.argv[0] for r in path] == ["compile-b", "link", "test"]
    (row,) = rec.invocations()
    assert row["critical_path_seconds"] == 9 and row["actions"] == 5
