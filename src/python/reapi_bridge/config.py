"""The bridge's configuration: a TOML file, every setting optional with a documented default.

`reapi-bridge config` prints the full reference (the text of `DEFAULT_CONFIG_TOML` below),
which is also a valid config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import toml

DEFAULT_LISTEN = "127.0.0.1:8980"
DEFAULT_STATE_DIR = ".reapi-bridge"
GIB = 1 << 30
MIB = 1 << 20

DEFAULT_CONFIG_TOML = f"""\
# reapi-bridge configuration. Every setting is optional; the values shown are the defaults.

[server]
# host:port to serve gRPC on (plain-text HTTP/2). Use 0.0.0.0:PORT to serve other machines.
listen = "{DEFAULT_LISTEN}"
# Directory holding the CAS, the action cache database and runtime files. Relative paths are
# resolved against the directory the bridge is started in.
state_dir = "{DEFAULT_STATE_DIR}"
# Threads answering gRPC calls. Streams (ByteStream, Execute) hold one each while open.
max_workers = 64
# Largest total blob size accepted or returned by one BatchUpdateBlobs/BatchReadBlobs call;
# advertised in GetCapabilities. Clients send larger blobs through ByteStream.
max_batch_total_size_bytes = {4 * MIB}
# Chunk size of ByteStream Read responses.
read_chunk_bytes = {MIB}

[cas]
# Size limit of the CAS in bytes; least recently used blobs are evicted beyond it.
max_bytes = {20 * GIB}
# fsync every blob before it becomes visible, so a power loss never leaves a corrupt blob.
fsync = true
# Resumable ByteStream uploads not touched for this long are deleted.
upload_expiry_seconds = 3600

[execution]
# Serve Execute, WaitExecution and the Operations service, and the Bots service executors
# use to take work. Without executors attached, actions wait (see unmatched_grace_seconds).
enabled = true
# Timeout for actions that set none, and the most an action may ask for (seconds).
default_timeout_seconds = 900
max_timeout_seconds = 21600
# An executor that has not checked in for this long is presumed dead: its actions go back
# to the queue (and run elsewhere) up to max_attempts times in all, then fail.
lease_timeout_seconds = 30
max_attempts = 3
# An action whose platform no registered executor offers fails after this long, naming the
# platform, instead of waiting forever.
unmatched_grace_seconds = 30
# Finished operations stay answerable (WaitExecution, GetOperation) for this long.
operation_retention_seconds = 600
# An action no client has waited on (an Execute or WaitExecution stream) for this long is
# cancelled: dropped if still queued, its lease cancelled if running. Pants 2.17 sends
# Execute(skip_cache_lookup) while its own cache read is in flight and drops the stream when
# the cache answers; without this those executions would still take executor slots.
# A client that reconnects with WaitExecution within this time keeps its action.
abandoned_grace_seconds = 10

# One table per REAPI instance name served; clients name the instance in each request.
# The empty name is what clients use when no instance is configured (Pants' default).
[[instances]]
name = ""
# Whether clients may write results with UpdateActionResult (Pants' --remote-cache-write).
allow_client_writes = true
"""


class ConfigError(Exception):
    """The configuration file or a flag is invalid; the message names the setting."""


@dataclass(frozen=True)
class InstanceConfig:
    name: str = ""
    allow_client_writes: bool = True


@dataclass(frozen=True)
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    max_workers: int = 64
    max_batch_total_size_bytes: int = 4 * MIB
    read_chunk_bytes: int = MIB


@dataclass(frozen=True)
class CasConfig:
    max_bytes: int = 20 * GIB
    fsync: bool = True
    upload_expiry_seconds: float = 3600.0


@dataclass(frozen=True)
class ExecutionConfig:
    enabled: bool = True
    default_timeout_seconds: float = 900.0
    max_timeout_seconds: float = 21600.0
    lease_timeout_seconds: float = 30.0
    max_attempts: int = 3
    unmatched_grace_seconds: float = 30.0
    operation_retention_seconds: float = 600.0
    abandoned_grace_seconds: float = 10.0


@dataclass(frozen=True)
class BridgeConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    cas: CasConfig = field(default_factory=CasConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    instances: Tuple[InstanceConfig, ...] = (InstanceConfig(),)

    def instance(self, name: str) -> Optional[InstanceConfig]:
        for inst in self.instances:
            if inst.name == name:
                return inst
        return None

    def with_overrides(
        self, *, listen: Optional[str] = None, state_dir: Optional[Path] = None
    ) -> "BridgeConfig":
        server = self.server
        if listen is not None:
            server = replace(server, listen=_check_listen(listen, "--listen"))
        if state_dir is not None:
            server = replace(server, state_dir=Path(state_dir))
        return replace(self, server=server)


def _check_listen(value: Any, where: str) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where}: expected host:port, got {value!r}")
    port = value.rsplit(":", 1)[1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: port {port!r} is not a number from 0 to 65535")
    return value


def _typed(table: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{where}.{key}: must not be negative, got {value!r}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def parse_config(data: Mapping[str, Any]) -> BridgeConfig:
    _check_keys(data, {"server", "cas", "execution", "instances"}, "config")
    s = data.get("server", {})
    _check_keys(s, set(ServerConfig.__dataclass_fields__), "[server]")
    d = ServerConfig()
    server = ServerConfig(
        listen=_check_listen(s.get("listen", d.listen), "[server].listen"),
        state_dir=Path(_typed(s, "state_dir", str, str(d.state_dir), "[server]")),
        max_workers=_typed(s, "max_workers", int, d.max_workers, "[server]"),
        max_batch_total_size_bytes=_typed(
            s, "max_batch_total_size_bytes", int, d.max_batch_total_size_bytes, "[server]"
        ),
        read_chunk_bytes=_typed(s, "read_chunk_bytes", int, d.read_chunk_bytes, "[server]"),
    )
    if server.max_workers < 1:
        raise ConfigError("[server].max_workers: must be at least 1")
    if server.read_chunk_bytes < 1:
        raise ConfigError("[server].read_chunk_bytes: must be at least 1")
    c = data.get("cas", {})
    _check_keys(c, set(CasConfig.__dataclass_fields__), "[cas]")
    dc = CasConfig()
    cas = CasConfig(
        max_bytes=_typed(c, "max_bytes", int, dc.max_bytes, "[cas]"),
        fsync=_typed(c, "fsync", bool, dc.fsync, "[cas]"),
        upload_expiry_seconds=_typed(
            c, "upload_expiry_seconds", float, dc.upload_expiry_seconds, "[cas]"
        ),
    )
    e = data.get("execution", {})
    _check_keys(e, set(ExecutionConfig.__dataclass_fields__), "[execution]")
    de = ExecutionConfig()
    execution = ExecutionConfig(
        enabled=_typed(e, "enabled", bool, de.enabled, "[execution]"),
        **{
            name: _typed(e, name, float, getattr(de, name), "[execution]")
            for name in (
                "default_timeout_seconds",
                "max_timeout_seconds",
                "lease_timeout_seconds",
                "unmatched_grace_seconds",
                "operation_retention_seconds",
                "abandoned_grace_seconds",
            )
        },
        max_attempts=_typed(e, "max_attempts", int, de.max_attempts, "[execution]"),
    )
    if execution.max_attempts < 1:
        raise ConfigError("[execution].max_attempts: must be at least 1")
    if execution.default_timeout_seconds > execution.max_timeout_seconds:
        raise ConfigError("[execution].default_timeout_seconds: must not exceed max_timeout_seconds")
    raw_instances = data.get("instances", [{"name": ""}])
    if not isinstance(raw_instances, list) or not raw_instances:
        raise ConfigError("[[instances]]: expected at least one [[instances]] table")
    instances = []
    for i, raw in enumerate(raw_instances):
        where = f"[[instances]] #{i + 1}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        _check_keys(raw, set(InstanceConfig.__dataclass_fields__), where)
        inst = InstanceConfig(
            name=_typed(raw, "name", str, "", where),
            allow_client_writes=_typed(raw, "allow_client_writes", bool, True, where),
        )
        if inst.name.startswith("/") or inst.name.endswith("/") or "//" in inst.name:
            raise ConfigError(f"{where}.name: {inst.name!r} must not start or end with '/'")
        reserved = {"blobs", "uploads", "compressed-blobs", "actions", "operations"}
        if set(inst.name.split("/")) & reserved:
            raise ConfigError(
                f"{where}.name: {inst.name!r} uses a reserved path segment ({', '.join(sorted(reserved))})"
            )
        if any(other.name == inst.name for other in instances):
            raise ConfigError(f"{where}.name: instance {inst.name!r} is configured twice")
        instances.append(inst)
    return BridgeConfig(server=server, cas=cas, execution=execution, instances=tuple(instances))


def load_config(path: Optional[Path]) -> BridgeConfig:
    if path is None:
        return BridgeConfig()
    try:
        data: Dict[str, Any] = toml.load(str(path))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist")
    except toml.TomlDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}")
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}")
