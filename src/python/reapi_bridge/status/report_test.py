"""`reapi-bridge status` groups the per-slot sessions of the report by executor, each slot
listed beneath it."""

from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2
from reapi_bridge.status.report import format_report

ARM = {"OSFamily": "linux", "ISA": "arm-a64"}
X86 = {"OSFamily": "linux", "ISA": "x86-64"}


def report(*sessions) -> status_pb2.StatusReport:
    r = status_pb2.StatusReport(instances=[""])
    for name, props, running, seen in sessions:
        r.executors.add(name=name, properties=props, running=running, seconds_since_update=seen)
    return r


def executor_lines(text: str) -> list:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("executors:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("queued actions"))
    return [" ".join(line.split()) for line in lines[start:end]]


def test_slots_are_grouped_by_executor_with_busy_and_free_counts():
    text = format_report(
        report(
            ("local-x86-64/1", X86, 0, 1.2),
            ("local-arm-a64/0", ARM, 1, 0.3),
            ("local-arm-a64/1", ARM, 0, 0.9),
            ("local-x86-64/0", X86, 0, 0.7),
            ("local-x86-64/2", X86, 1, 2.0),
        ),
        "grpc://127.0.0.1:1",
    )
    assert executor_lines(text) == [
        "executors: 2 (5 slots: 2 busy, 3 free)",
        "local-arm-a64 ISA=arm-a64, OSFamily=linux 2 slots: 1 busy, 1 free, last seen 0.3s ago",
        "local-arm-a64/0 busy (1 running), last seen 0.3s ago",
        "local-arm-a64/1 idle, last seen 0.9s ago",
        "local-x86-64 ISA=x86-64, OSFamily=linux 3 slots: 1 busy, 2 free, last seen 0.7s ago",
        "local-x86-64/0 idle, last seen 0.7s ago",
        "local-x86-64/1 idle, last seen 1.2s ago",
        "local-x86-64/2 busy (1 running), last seen 2.0s ago",
    ]


def test_a_reconnected_slot_counts_once_as_its_newest_session_says():
    text = format_report(
        report(
            ("host-x86-64-7/0", X86, 1, 25.0),  # the session it left behind when it reconnected
            ("host-x86-64-7/0", X86, 0, 0.4),
            ("host-x86-64-7/1", X86, 0, 0.5),
        ),
        "grpc://127.0.0.1:1",
    )
    assert executor_lines(text)[1:] == [
        "host-x86-64-7 ISA=x86-64, OSFamily=linux 2 slots: 0 busy, 2 free, last seen 0.4s ago",
        "host-x86-64-7/0 idle, last seen 0.4s ago",
        "host-x86-64-7/1 idle, last seen 0.5s ago",
    ]


def test_a_bot_name_without_a_slot_is_an_executor_with_one_slot():
    text = format_report(report(("buildgrid-bot", X86, 1, 0.1)), "grpc://127.0.0.1:1")
    assert executor_lines(text) == [
        "executors: 1 (1 slot: 1 busy, 0 free)",
        "buildgrid-bot ISA=x86-64, OSFamily=linux 1 slot: 1 busy, 0 free, last seen 0.1s ago",
        "buildgrid-bot busy (1 running), last seen 0.1s ago",
    ]


def test_no_executors():
    assert executor_lines(format_report(report(), "grpc://127.0.0.1:1")) == ["executors: 0 (0 slots: 0 busy, 0 free)"]


def test_persistent_workers_are_listed_once_per_executor_from_its_newest_slot():
    r = report(("local-arm-a64/0", ARM, 0, 2.0), ("local-arm-a64/1", ARM, 1, 0.4))
    stale, fresh = r.executors
    stale.workers.add(key="0" * 64, protocol="proto", pid=1, requests=1)
    fresh.workers.add(key="ab" * 32, protocol="json", multiplex=True, pid=42, requests=7, rss_bytes=3 << 20, busy=1)
    fresh.workers.add(key="cd" * 32, protocol="proto", pid=43, requests=2, rss_bytes=1 << 20, idle_seconds=5.5)
    lines = executor_lines(format_report(r, "grpc://127.0.0.1:1"))
    assert lines[-3:] == [
        "persistent workers: 2",
        "key abababababab json, multiplex pid 42 7 requests RSS 3.0 MiB busy (1 in flight)",
        "key cdcdcdcdcdcd proto pid 43 2 requests RSS 1.0 MiB idle 5.5s",
    ]
