from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutorStatus(_message.Message):
    __slots__ = ("name", "properties", "running", "seconds_since_update", "workers")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SECONDS_SINCE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    properties: _containers.ScalarMap[str, str]
    running: int
    seconds_since_update: float
    workers: _containers.RepeatedCompositeFieldContainer[WorkerStatus]
    def __init__(self, name: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ..., running: _Optional[int] = ..., seconds_since_update: _Optional[float] = ..., workers: _Optional[_Iterable[_Union[WorkerStatus, _Mapping]]] = ...) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("key", "protocol", "multiplex", "pid", "requests", "rss_bytes", "idle_seconds", "busy")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    MULTIPLEX_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    key: str
    protocol: str
    multiplex: bool
    pid: int
    requests: int
    rss_bytes: int
    idle_seconds: float
    busy: int
    def __init__(self, key: _Optional[str] = ..., protocol: _Optional[str] = ..., multiplex: _Optional[bool] = ..., pid: _Optional[int] = ..., requests: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., idle_seconds: _Optional[float] = ..., busy: _Optional[int] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("platform", "queued")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    platform: str
    queued: int
    def __init__(self, platform: _Optional[str] = ..., queued: _Optional[int] = ...) -> None: ...

class StatusReport(_message.Message):
    __slots__ = ("executors", "queues", "actions_running", "actions_completed", "cas_blobs", "cas_bytes", "cas_max_bytes", "cas_evicted_blobs", "action_cache_entries", "action_cache_hits", "action_cache_misses", "instances")
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    CAS_BLOBS_FIELD_NUMBER: _ClassVar[int]
    CAS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAS_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAS_EVICTED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    ACTION_CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ACTION_CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    ACTION_CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorStatus]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStatus]
    actions_running: int
    actions_completed: int
    cas_blobs: int
    cas_bytes: int
    cas_max_bytes: int
    cas_evicted_blobs: int
    action_cache_entries: int
    action_cache_hits: int
    action_cache_misses: int
    instances: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, executors: _Optional[_Iterable[_Union[ExecutorStatus, _Mapping]]] = ..., queues: _Optional[_Iterable[_Union[QueueStatus, _Mapping]]] = ..., actions_running: _Optional[int] = ..., actions_completed: _Optional[int] = ..., cas_blobs: _Optional[int] = ..., cas_bytes: _Optional[int] = ..., cas_max_bytes: _Optional[int] = ..., cas_evicted_blobs: _Optional[int] = ..., action_cache_entries: _Optional[int] = ..., action_cache_hits: _Optional[int] = ..., action_cache_misses: _Optional[int] = ..., instances: _Optional[_Iterable[str]] = ...) -> None: ...
