"""The bridge's Prometheus metrics, on a registry of its own (two bridges in one process keep
theirs apart). What the hot path touches is a counter or a histogram observation; everything
that already has a count somewhere (CAS size, action-cache hits, queues, slots, workers) is
read at scrape time by a collector, costing nothing between scrapes."""

from __future__ import annotations

from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# Latency buckets for RPCs: from a cache lookup to an Execute stream of several minutes.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rpcs = Counter(
            "reapi_bridge_rpcs", "gRPC calls answered, by service, method and status code.",
            ["service", "method", "code"], registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "reapi_bridge_rpc_seconds", "gRPC call duration (streams: until the last message), by service and method.",
            ["service", "method"], buckets=RPC_BUCKETS, registry=self.registry,
        )
        self.executions = Counter(
            "reapi_bridge_executions", "Finished executions by platform, executor and outcome "
            "(ok, failed: nonzero exit, error: no result or a non-OK status, cached: Execute answered from the cache).",
            ["platform", "executor", "outcome"], registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "reapi_bridge_queue_seconds", "Time an action waited for an executor, by platform.",
            ["platform"], buckets=QUEUE_BUCKETS, registry=self.registry,
        )
        self.execution_seconds = Histogram(
            "reapi_bridge_execution_seconds", "Time an executor spent on an action (from taking it to uploading its outputs), by platform.",
            ["platform"], buckets=RPC_BUCKETS, registry=self.registry,
        )

    def watch(self, read_state: Callable[[], dict]) -> None:
        """Adds the scrape-time gauges; `read_state` returns the dict StateCollector reads."""
        self.registry.register(StateCollector(read_state))

    def observe_execution(self, platform: str, executor: str, outcome: str,
                          queued: Optional[float], executing: Optional[float]) -> None:
        self.executions.labels(platform, executor, outcome).inc()
        if queued is not None:
            self.queue_seconds.labels(platform).observe(max(queued, 0.0))
        if executing is not None:
            self.execution_seconds.labels(platform).observe(max(executing, 0.0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector:
    """Gauges and counters read from the bridge's own state at scrape time."""

    def __init__(self, read_state: Callable[[], dict]) -> None:
        self.read_state = read_state

    def describe(self):
        return []

    def collect(self):
        s = self.read_state()
        cas, ac, traffic = s["cas"], s["action_cache"], s["cas_traffic"]
        yield CounterMetricFamily("reapi_bridge_cas_read_bytes", "Blob bytes sent to clients (batch reads, ByteStream Read).", value=traffic["read_bytes"])
        yield CounterMetricFamily("reapi_bridge_cas_written_bytes", "Blob bytes received from clients (batch updates, ByteStream Write).", value=traffic["written_bytes"])
        yield GaugeMetricFamily("reapi_bridge_cas_blobs", "Blobs stored in the CAS.", value=cas.blob_count)
        yield GaugeMetricFamily("reapi_bridge_cas_bytes", "Bytes stored in the CAS.", value=cas.total_bytes)
        yield GaugeMetricFamily("reapi_bridge_cas_max_bytes", "The CAS size limit.", value=cas.max_bytes)
        yield CounterMetricFamily("reapi_bridge_cas_evicted_blobs", "Blobs evicted to stay under the size limit.", value=cas.evicted_blobs)
        yield GaugeMetricFamily("reapi_bridge_action_cache_entries", "Results stored in the action cache.", value=ac.entries)
        yield CounterMetricFamily("reapi_bridge_action_cache_lookups", "Action-cache lookups (GetActionResult and Execute).", value=ac.hits + ac.misses)
        yield CounterMetricFamily("reapi_bridge_action_cache_hits", "Action-cache lookups that found a servable result.", value=ac.hits)
        yield CounterMetricFamily("reapi_bridge_action_cache_misses", "Action-cache lookups that found none (or one not servable).", value=ac.misses)
        queued = GaugeMetricFamily("reapi_bridge_queue_length", "Actions waiting for an executor, by platform.", labels=["platform"])
        for platform, n in sorted(s["queues"].items()):
            queued.add_metric([platform], n)
        yield queued
        slots = GaugeMetricFamily("reapi_bridge_executor_slots", "Executor slots (bot sessions), by executor, ISA and state.", labels=["executor", "isa", "state"])
        workers = GaugeMetricFamily("reapi_bridge_persistent_workers", "Persistent workers executors report, by executor, ISA and state.", labels=["executor", "isa", "state"])
        for (executor, isa), (busy, free, w_busy, w_idle) in sorted(s["executors"].items()):
            slots.add_metric([executor, isa, "busy"], busy)
            slots.add_metric([executor, isa, "free"], free)
            workers.add_metric([executor, isa, "busy"], w_busy)
            workers.add_metric([executor, isa, "idle"], w_idle)
        yield slots
        yield workers
        yield GaugeMetricFamily("reapi_bridge_actions_running", "Actions executors are running now.", value=s["running"])
