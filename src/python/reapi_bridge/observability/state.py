"""One read of the bridge's state for metrics, the page and the JSON API: storage, cache,
queues and executors (slots grouped by executor; workers counted once per executor, since
every slot reports the same pool)."""

from __future__ import annotations

from typing import Dict, Tuple

from reapi_bridge.cas.instance import CasTraffic


def executor_name(slot: str) -> str:
    return slot.rsplit("/", 1)[0]


def read_state(cas, action_cache, scheduler, traffic: CasTraffic) -> dict:
    snap = scheduler.snapshot()
    executors: Dict[Tuple[str, str], list] = {}
    details: Dict[str, dict] = {}
    for e in snap["executors"]:
        name = executor_name(e["id"])
        isa = e["properties"].get("ISA", "")
        row = executors.setdefault((name, isa), [0, 0, 0, 0])
        row[0] += min(e["busy"], 1)
        row[1] += 1 - min(e["busy"], 1)
        workers = e["workers"]
        row[2] = max(row[2], sum(1 for w in workers if w.get("busy")))
        row[3] = max(row[3], sum(1 for w in workers if not w.get("busy")))
        d = details.setdefault(name, {"name": name, "properties": e["properties"], "slots": []})
        d["slots"].append({"id": e["id"], "busy": e["busy"], "idle_seconds": e["idle_seconds"]})
    return {
        "cas": cas.stats(),
        "action_cache": action_cache.stats(),
        "cas_traffic": traffic.snapshot(),
        "queues": snap["queues"],
        "executors": executors,
        "executor_details": sorted(details.values(), key=lambda d: d["name"]),
        "running": snap["executing"],
        "completed": snap["completed"],
    }
