"""The bridge's configuration: a TOML file, every setting optional with a documented default.

Each setting is declared once, below, with its default and its help; the parser and the
reference `reapi-bridge config` prints (`reference_toml()`, itself a valid config file) are
both derived from those declarations.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import toml

DEFAULT_LISTEN = "127.0.0.1:8980"
DEFAULT_STATE_DIR = ".reapi-bridge"
GIB = 1 << 30
MIB = 1 << 20

class ConfigError(Exception):
    """The configuration file or a flag is invalid; the message names the setting."""


def setting(default: Any, help: str, *, minimum: Optional[float] = None) -> Any:
    """Declares one setting: its default, its help (the comment `reapi-bridge config` prints
    above it) and, for numbers, its smallest allowed value (0 unless given)."""
    return field(default=default, metadata={"help": help, "minimum": minimum})


@dataclass(frozen=True)
class InstanceConfig:
    """One table per REAPI instance name served; clients name the instance in each request.
    The empty name is what clients use when no instance is configured (Pants' default)."""

    name: str = setting("", "The instance name; `/` separates path components.")
    allow_client_writes: bool = setting(
        True, "Whether clients may write results with UpdateActionResult (Pants' --remote-cache-write)."
    )


@dataclass(frozen=True)
class ServerConfig:
    """The gRPC server and where it keeps its state."""

    listen: str = setting(
        DEFAULT_LISTEN,
        "host:port to serve gRPC on (plain-text HTTP/2). Use 0.0.0.0:PORT to serve other machines.",
    )
    state_dir: Path = setting(
        Path(DEFAULT_STATE_DIR),
        "Directory holding the CAS, the action cache database and runtime files. Relative paths "
        "are resolved against the directory the bridge is started in.",
    )
    max_workers: int = setting(
        64, "Threads answering gRPC calls. Streams (ByteStream, Execute) hold one each while open.", minimum=1
    )
    max_batch_total_size_bytes: int = setting(
        4 * MIB,
        "Largest total blob size accepted or returned by one BatchUpdateBlobs/BatchReadBlobs "
        "call; advertised in GetCapabilities. Clients send larger blobs through ByteStream.",
    )
    read_chunk_bytes: int = setting(MIB, "Chunk size of ByteStream Read responses.", minimum=1)


@dataclass(frozen=True)
class CasConfig:
    """The content-addressable storage on disk."""

    max_bytes: int = setting(
        20 * GIB, "Size limit of the CAS in bytes; least recently used blobs are evicted beyond it."
    )
    fsync: bool = setting(
        True, "fsync every blob before it becomes visible, so a power loss never leaves a corrupt blob."
    )
    upload_expiry_seconds: float = setting(
        3600.0, "Resumable ByteStream uploads not touched for this long are deleted."
    )


@dataclass(frozen=True)
class ExecutionConfig:
    """Remote execution: the queues, leases and timeouts (the scheduler's settings too)."""

    enabled: bool = setting(
        True,
        "Serve Execute, WaitExecution and the Operations service, and the Bots service executors "
        "use to take work. Without executors attached, actions wait (see unmatched_grace_seconds).",
    )
    default_timeout_seconds: float = setting(900.0, "Timeout for actions that set none (seconds).")
    max_timeout_seconds: float = setting(21600.0, "The most an action may ask for (seconds).")
    lease_timeout_seconds: float = setting(
        30.0,
        "An executor that has not checked in for this long is presumed dead: its actions go back "
        "to the queue (and run elsewhere) up to max_attempts times in all, then fail.",
    )
    max_attempts: int = setting(3, "How many executors may lose an action before it fails.", minimum=1)
    unmatched_grace_seconds: float = setting(
        30.0,
        "An action whose platform no registered executor offers fails after this long, naming "
        "the platform, instead of waiting forever.",
    )
    operation_retention_seconds: float = setting(
        600.0, "Finished operations stay answerable (WaitExecution, GetOperation) for this long."
    )
    abandoned_grace_seconds: float = setting(
        10.0,
        "An action no client has waited on (an Execute or WaitExecution stream) for this long is "
        "cancelled: dropped if still queued, its lease cancelled if running. Pants 2.17 sends "
        "Execute(skip_cache_lookup) while its own cache read is in flight and drops the stream "
        "when the cache answers; without this those executions would still take executor slots. "
        "A client that reconnects with WaitExecution within this time keeps its action.",
    )


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


# The TOML tables, in the order the reference prints them.
SECTIONS = (("server", ServerConfig), ("cas", CasConfig), ("execution", ExecutionConfig))
_KINDS = {"str": str, "bool": bool, "int": int, "float": float, "Path": str}


def parse_section(table: Mapping[str, Any], cls: type, where: str) -> Any:
    """One table read into its dataclass: unknown keys, wrong types and values under a
    setting's minimum are errors naming the setting."""
    _check_keys(table, {f.name for f in fields(cls)}, where)
    values = {}
    for f in fields(cls):
        value = _typed(table, f.name, _KINDS[f.type], f.default if f.type != "Path" else str(f.default), where)
        minimum = f.metadata.get("minimum")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{where}.{f.name}: must be at least {minimum}")
        values[f.name] = Path(value) if f.type == "Path" else value
    return cls(**values)


def parse_config(data: Mapping[str, Any]) -> BridgeConfig:
    _check_keys(data, {"server", "cas", "execution", "instances"}, "config")
    server, cas, execution = (parse_section(data.get(name, {}), cls, f"[{name}]") for name, cls in SECTIONS)
    _check_listen(server.listen, "[server].listen")
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
        inst = parse_section(raw, InstanceConfig, where)
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


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, Path)):
        return toml.dumps({"v": str(value)}).split("=", 1)[1].strip()
    return str(value)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in textwrap.wrap(text, 93))


def _settings(cls: type) -> str:
    return "".join(_comment(f.metadata["help"]) + f"{f.name} = {_toml_value(f.default)}\n" for f in fields(cls))


def reference_toml() -> str:
    """Every setting with its help and default, as a config file."""
    parts = ["# reapi-bridge configuration. Every setting is optional; the values shown are the defaults.\n"]
    for name, cls in SECTIONS:
        intro = _comment(" ".join(cls.__doc__.split())) if cls.__doc__ else ""
        parts.append(f"\n[{name}]\n{intro}{_settings(cls)}")
    parts.append(f"\n{_comment(' '.join(InstanceConfig.__doc__.split()))}[[instances]]\n{_settings(InstanceConfig)}")
    return "".join(parts)
