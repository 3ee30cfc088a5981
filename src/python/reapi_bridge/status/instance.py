"""The bridge's status as one report: storage, action cache, queues and executors."""

from __future__ import annotations

from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2
from reapi_bridge.scheduler.scheduler import Scheduler

WORKER_FIELDS = frozenset(status_pb2.WorkerStatus.DESCRIPTOR.fields_by_name)


class StatusInstance:
    def __init__(
        self, cas: ContentAddressableStorage, action_cache: ActionCache, scheduler: Scheduler, instances: InstanceRegistry
    ) -> None:
        self.cas = cas
        self.action_cache = action_cache
        self.scheduler = scheduler
        self.instances = instances

    def report(self) -> status_pb2.StatusReport:
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
            executor = report.executors.add(
                name=e["id"], properties=e["properties"], running=e["busy"], seconds_since_update=e["idle_seconds"]
            )
            for row in e["workers"]:
                executor.workers.add(**{k: v for k, v in row.items() if k in WORKER_FIELDS})
        for platform, queued in sorted(snap["queues"].items()):
            report.queues.add(platform=platform, queued=queued)
        return report
