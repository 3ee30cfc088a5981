"""Assembles storage and services into one gRPC server over a state directory."""

from __future__ import annotations

import fcntl
import logging
import os
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import threading

import grpc
from google.longrunning import operations_pb2_grpc

from reapi_bridge.actioncache.instance import ActionCacheInstance
from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.auth.limits import LimitInterceptor
from reapi_bridge.cas.instance import CasTraffic
from reapi_bridge.observability.feed import ActionFeed
from reapi_bridge.observability.http import HttpEndpoint, ObservabilitySources
from reapi_bridge.observability.interceptor import MetricsInterceptor
from reapi_bridge.observability.metrics import BridgeMetrics
from reapi_bridge.observability.recorder import ActionRecorder
from reapi_bridge.observability.state import read_state
from reapi_bridge.auth.security import Security
from reapi_bridge.cas.instance import CasInstance
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.config import BridgeConfig
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2_grpc
from reapi_bridge.bots.instance import BotsInstance
from reapi_bridge.bots.service import BotsService
from reapi_bridge.execution.instance import ExecutionInstance, cache_successful_result
from reapi_bridge.execution.service import ExecutionService, OperationsService
from reapi_bridge.status.instance import StatusInstance
from reapi_bridge.status.service import StatusService
from reapi_bridge.actioncache.service import ActionCacheService
from reapi_bridge.cas.bytestream_service import ByteStreamService
from reapi_bridge.capabilities.service import CapabilitiesService
from reapi_bridge.cas.service import CasService
from reapi_bridge.scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)

# Room for protobuf framing around the largest batch or stream chunk we accept.
_MESSAGE_OVERHEAD = 1 << 20
_MIN_MESSAGE_BYTES = 16 << 20


class StateDirInUse(Exception):
    pass


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def cas(self) -> Path:
        return self.root / "cas"

    @property
    def action_cache_db(self) -> Path:
        return self.root / "action-cache.sqlite3"

    @property
    def lock(self) -> Path:
        return self.root / "bridge.lock"

    @property
    def address_file(self) -> Path:
        return self.root / "address"

    @property
    def http_address_file(self) -> Path:
        return self.root / "http-address"


class Bridge:
    """A running bridge: storage opened on the state dir and a started gRPC server."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.paths = StatePaths(config.server.state_dir.resolve())
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock_state_dir()
        self.cas = ContentAddressableStorage(
            self.paths.cas,
            max_bytes=config.cas.max_bytes,
            fsync=config.cas.fsync,
            upload_expiry_seconds=config.cas.upload_expiry_seconds,
        )
        self.security = Security.from_config(config, self.paths.root)
        self.action_cache = ActionCache(
            self.paths.action_cache_db, self.cas, verifier=self.security.verifier.problem, audit=self.security.audit.record
        )
        self.instances = InstanceRegistry(config.instances)
        obs = config.observability
        self.metrics = BridgeMetrics() if obs.metrics else None
        self.recorder = ActionRecorder(obs.recent_actions)
        self.feed = ActionFeed(self.recorder, self.metrics)
        self.cas_traffic = CasTraffic()
        e = config.execution
        self.scheduler = Scheduler(
            e, on_success=cache_successful_result(self.action_cache), on_finish=self.feed.finished
        )
        self.execution = ExecutionInstance(
            self.cas, self.action_cache, self.scheduler, self.instances, e.default_timeout_seconds, e.max_timeout_seconds,
            on_cache_hit=lambda request, digest, result: self.feed.cache_hit(
                request.instance_name, digest, request.client, result
            ),
        )
        self.http: Optional[HttpEndpoint] = None
        self.server: Optional[grpc.Server] = None
        self.port: Optional[int] = None
        self._stopping = threading.Event()
        self._reaper: Optional[threading.Thread] = None

    def _reap_forever(self) -> None:
        while not self._stopping.wait(0.5):
            try:
                self.scheduler.reap()
            except Exception:
                logger.exception("scheduler upkeep failed")

    def _lock_state_dir(self) -> int:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateDirInUse(
                f"state dir {self.paths.root} is in use by another reapi-bridge process"
            )
        return fd

    def start(self) -> str:
        s = self.config.server
        max_message = max(s.max_batch_total_size_bytes, _MIN_MESSAGE_BYTES) + _MESSAGE_OVERHEAD
        limits = self.security.limits
        auth = self.security.authorizer
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=s.max_workers, thread_name_prefix="grpc"),
            # The metrics' interceptor outermost, so calls refused for a limit are counted too.
            interceptors=[
                *([MetricsInterceptor(self.metrics)] if self.metrics is not None else []),
                *([LimitInterceptor(limits)] if limits is not None else []),
            ] or None,
            options=[
                ("grpc.max_receive_message_length", max_message),
                ("grpc.max_send_message_length", max_message),
                ("grpc.so_reuseport", 0),
            ],
        )
        max_batch = s.max_batch_total_size_bytes
        cas = CasInstance(self.cas, max_batch, s.read_chunk_bytes, self.cas_traffic)
        re_grpc.add_ContentAddressableStorageServicer_to_server(
            CasService(cas, self.instances, auth), server
        )
        re_grpc.add_ActionCacheServicer_to_server(
            ActionCacheService(ActionCacheInstance(self.action_cache), self.instances, auth), server
        )
        execution = self.config.execution
        re_grpc.add_CapabilitiesServicer_to_server(
            CapabilitiesService(self.instances, max_batch, auth, execution_enabled=execution.enabled), server
        )
        if execution.enabled:
            re_grpc.add_ExecutionServicer_to_server(
                ExecutionService(self.execution, auth), server
            )
            operations_pb2_grpc.add_OperationsServicer_to_server(OperationsService(self.execution, auth), server)
            bots_pb2_grpc.add_BotsServicer_to_server(BotsService(BotsInstance(self.scheduler), auth, self.instances), server)
            self._reaper = threading.Thread(target=self._reap_forever, name="scheduler-upkeep", daemon=True)
            self._reaper.start()
        status_pb2_grpc.add_BridgeStatusServicer_to_server(
            StatusService(StatusInstance(self.cas, self.action_cache, self.scheduler, self.instances), auth), server
        )
        bs_grpc.add_ByteStreamServicer_to_server(
            ByteStreamService(cas, self.instances, auth), server
        )
        host, _, port = s.listen.rpartition(":")
        credentials = self.security.credentials
        if credentials is None:
            bound = server.add_insecure_port(f"{host}:{port}")
        else:
            bound = server.add_secure_port(f"{host}:{port}", credentials)
        if bound == 0:
            raise OSError(f"could not listen on {s.listen} (address in use or not available)")
        server.start()
        self.server, self.port = server, bound
        self._start_http()
        address = f"{'grpcs' if credentials is not None else 'grpc'}://{host}:{bound}"
        self.paths.address_file.write_text(address + "\n")
        logger.info("reapi-bridge serving on %s, instances %s", address, self.instances.names())
        return address

    def read_state(self) -> dict:
        return read_state(self.cas, self.action_cache, self.scheduler, self.cas_traffic)

    def _start_http(self) -> None:
        listen = self.config.observability.http_listen
        if not listen:
            return
        metrics = self.metrics or BridgeMetrics()
        metrics.watch(self.read_state)
        authorizer = self.security.authorizer

        def check_token(token: Optional[str]) -> Optional[str]:
            return authorizer.check_read_everywhere(token, self.instances.names())

        self.http = HttpEndpoint(listen, ObservabilitySources(metrics, self.recorder, self.read_state, check_token))
        self.http.start()
        self.paths.http_address_file.write_text(self.http.address + "\n")
        logger.info("metrics and the status page on %s", self.http.address)

    def stop(self, grace: float = 5.0) -> None:
        self._stopping.set()
        if self.http is not None:
            self.http.stop()
            self.paths.http_address_file.unlink(missing_ok=True)
        self.scheduler.shutdown()
        if self.server is not None:
            self.server.stop(grace).wait()
            self.server = None
        self.action_cache.close()
        self.security.audit.close()
        self.paths.address_file.unlink(missing_ok=True)
        os.close(self._lock_fd)
