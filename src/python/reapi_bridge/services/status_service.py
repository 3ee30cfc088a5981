"""The bridge's own status service (crossbuild.bridge.v1.BridgeStatus)."""

from __future__ import annotations

from reapi_bridge.action_cache import ActionCache
from reapi_bridge.cas import ContentAddressableStorage
from reapi_bridge.instances import InstanceRegistry
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2, status_pb2_grpc
from reapi_bridge.scheduler import Scheduler
from reapi_bridge.services.grpc_errors import unary


class StatusService(status_pb2_grpc.BridgeStatusServicer):
    def __init__(
        self, cas: ContentAddressableStorage, action_cache: ActionCache, scheduler: Scheduler, instances: InstanceRegistry
    ) -> None:
        self.cas = cas
        self.action_cache = action_cache
        self.scheduler = scheduler
        self.instances = instances

    @unary
    def GetStatus(self, request, context):
        snap = self.scheduler.snapshot()
        cas = self.cas.stats()
        ac = self.action_cache.stats()
        report = status_pb2.StatusReport(
            actions_running=snap["executing"],
            actions_completed=snap["completed"],
            cas_blobs=cas.blob_count,
            cas_bytes=cas.total_bytes,
            cas_max_bytes=cas.max_bytes,
            cas_evicted_blobs=cas.evicted_blobs,
            action_cache_entries=ac.entries,
            action_cache_hits=ac.hits,
            action_cache_misses=ac.misses,
            instances=self.instances.names(),
        )
        for e in snap["executors"]:
            report.executors.add(
                name=e["id"], properties=e["properties"], running=e["busy"], seconds_since_update=e["idle_seconds"]
            )
        for platform, queued in sorted(snap["queues"].items()):
            report.queues.add(platform=platform, queued=queued)
        return report


def format_report(report: status_pb2.StatusReport, address: str) -> str:
    lines = [f"reapi-bridge at {address} (instances: {', '.join(repr(i) for i in report.instances)})"]
    lines.append(f"executors: {len(report.executors)}")
    for e in sorted(report.executors, key=lambda e: e.name):
        props = ", ".join(f"{k}={v}" for k, v in sorted(e.properties.items()))
        state = f"busy ({e.running} running)" if e.running else "idle"
        lines.append(f"  {e.name:<40} {props:<30} {state}, last seen {e.seconds_since_update:.1f}s ago")
    if report.queues:
        lines.append("queued actions:")
        for q in report.queues:
            lines.append(f"  {q.platform}: {q.queued}")
    else:
        lines.append("queued actions: none")
    lines.append(f"actions: {report.actions_running} running, {report.actions_completed} completed")
    lookups = report.action_cache_hits + report.action_cache_misses
    rate = f"{100.0 * report.action_cache_hits / lookups:.1f}%" if lookups else "n/a"
    lines.append(
        f"action cache: {report.action_cache_entries} results, {report.action_cache_hits} hits / "
        f"{lookups} lookups (hit rate {rate})"
    )
    lines.append(
        f"CAS: {report.cas_blobs} blobs, {report.cas_bytes / 2**20:.1f} MiB of "
        f"{report.cas_max_bytes / 2**30:.1f} GiB, {report.cas_evicted_blobs} evicted"
    )
    return "\n".join(lines)
