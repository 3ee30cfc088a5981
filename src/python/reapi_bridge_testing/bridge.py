"""Helpers for tests and benchmarks: a bridge on a free loopback port (in this process or as a
subprocess), the client connected to it, actions and executors."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import grpc

from reapi_bridge.client.client import Client
from reapi_bridge.config import BridgeConfig, CasConfig, InstanceConfig, ServerConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


def digest_of(data: bytes) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_test_config(state_dir: Path, instances: Sequence[InstanceConfig] = (InstanceConfig(),), **cas) -> BridgeConfig:
    return BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=state_dir, max_workers=16),
        cas=CasConfig(**cas),
        instances=tuple(instances),
    )


@contextmanager
def running_bridge(config: BridgeConfig) -> Iterator["object"]:
    """An in-process bridge (real gRPC server on loopback); yields the Bridge."""
    from reapi_bridge.server import Bridge

    bridge = Bridge(config)
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.stop(grace=0)


@contextmanager
def client_for(address: str, instance: str = "", auth=None) -> Iterator[Client]:
    """A client on `address`; `auth` (a ClientAuth) for TLS and tokens."""
    from reapi_bridge.auth.tls import ClientAuth, open_channel

    channel = open_channel(address, auth or ClientAuth(), options=CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield Client(channel, instance)
    finally:
        channel.close()


class BridgeProcess:
    """`reapi-bridge serve` as a subprocess: by default this interpreter running the package,
    or any command (for example the built pex) given as `command`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        command: Optional[List[str]] = None,
        config: Optional[Path] = None,
        extra_args: Sequence[str] = (),
        preexec_fn=None,
    ) -> None:
        self.state_dir = state_dir
        self.command = command or [sys.executable, "-m", "reapi_bridge"]
        self.config = config
        self.extra_args = list(extra_args)
        self.preexec_fn = preexec_fn
        self.proc: Optional[subprocess.Popen] = None
        self.address: Optional[str] = None
        self.log_path = state_dir.parent / f"{state_dir.name}.log"

    def start(self, port: int = 0) -> str:
        args = [*self.command, "serve", "--state-dir", str(self.state_dir), "--listen", f"127.0.0.1:{port}"]
        if self.config:
            args += ["--config", str(self.config)]
        args += self.extra_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self.log, env=env, preexec_fn=self.preexec_fn
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith(("grpc://", "grpcs://")):
            self.proc.wait(timeout=30)
            raise RuntimeError(
                f"bridge did not start (exit {self.proc.returncode}): {line}\n{self.log_path.read_text()}"
            )
        self.address = line
        return line

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.log.close()


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_for(predicate, what: str, timeout: float = 60.0, interval: float = 0.02):
    """The first truthy value `predicate` returns; fails the test naming `what` if none comes
    within `timeout` seconds (a bound against hangs, never a measure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def upload_directory(client: Client, files: dict) -> re_pb2.Digest:
    """Uploads a tree given as {"path/to/file": bytes, (bytes, executable) or (bytes,
    executable, {node property: value})}; returns its root."""
    tree: dict = {}
    for path, content in files.items():
        data, executable, props = (tuple(content) + (False, {})[len(content) - 1:]) if isinstance(content, tuple) else (content, False, {})
        node = tree
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = (data, executable, props)

    def build(node: dict) -> re_pb2.Digest:
        directory = re_pb2.Directory()
        for name in sorted(node):
            value = node[name]
            if isinstance(value, dict):
                directory.directories.add(name=name, digest=build(value))
            else:
                data, executable, props = value
                file_node = directory.files.add(name=name, digest=client.upload(data), is_executable=executable)
                for prop, prop_value in sorted(props.items()):
                    file_node.node_properties.properties.add(name=prop, value=prop_value)
        return client.upload(directory.SerializeToString(deterministic=True))

    return build(tree)


def make_action(
    client: Client,
    argv: Sequence[str],
    *,
    files: Optional[dict] = None,
    env: Optional[dict] = None,
    output_paths: Sequence[str] = (),
    platform: Optional[dict] = None,
    timeout_seconds: float = 0,
    working_directory: str = "",
    salt: bytes = b"",
) -> re_pb2.Digest:
    """Uploads a Command, its input root and an Action; platform goes on Command.platform, as
    Pants sends it."""
    command = re_pb2.Command(
        arguments=list(argv),
        environment_variables=[
            re_pb2.Command.EnvironmentVariable(name=k, value=v) for k, v in sorted((env or {}).items())
        ],
        output_paths=sorted(output_paths),
        working_directory=working_directory,
    )
    for k, v in sorted((platform or {}).items()):
        command.platform.properties.add(name=k, value=v)
    action = re_pb2.Action(
        command_digest=client.upload(command.SerializeToString(deterministic=True)),
        input_root_digest=upload_directory(client, files or {}),
        salt=salt,
    )
    if timeout_seconds:
        action.timeout.FromNanoseconds(int(timeout_seconds * 1e9))
    return client.upload(action.SerializeToString(deterministic=True))


def execute(client: Client, action_digest: re_pb2.Digest, skip_cache_lookup: bool = False):
    """Runs Execute to the end; returns (ExecuteResponse, list of stages seen)."""

    stages = []
    last = None
    for op in client.execution.Execute(
        re_pb2.ExecuteRequest(
            instance_name=client.instance, action_digest=action_digest, skip_cache_lookup=skip_cache_lookup
        )
    ):
        meta = re_pb2.ExecuteOperationMetadata()
        op.metadata.Unpack(meta)
        stages.append(meta.stage)
        last = op
    assert last is not None and last.done
    response = re_pb2.ExecuteResponse()
    last.response.Unpack(response)
    return response, stages


@contextmanager
def traversable_temp_dir(prefix: str = "crossbuild-test-") -> Iterator[Path]:
    """A temp dir every user can traverse: pytest's are private to root, and executors run
    actions as `nobody` when they run as root."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextmanager
def running_executor(address: str, work: Path, isa: str = "x86-64", name: str = "test-x86", **options):
    """An in-process executor (real Bots sessions, real processes) serving `address`."""
    from reapi_bridge.executor.main import Executor, ExecutorOptions

    options.setdefault("concurrency", 2)
    ex = Executor(
        ExecutorOptions(
            bridge=address,
            isa=isa,
            work_dir=work / f"executor-{name}",
            append_only_caches=work / "named-caches",
            name=name,
            **options,
        )
    )
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()
