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
class TlsConfig:
    """TLS for the gRPC port (TLS 1.2 or later). Off unless cert_chain and private_key are set;
    `reapi-bridge certs` makes a CA, a server and client certificates."""

    cert_chain: str = setting("", "PEM file of the server certificate (and intermediates). Empty: plain-text HTTP/2.")
    private_key: str = setting("", "PEM file of the server certificate's private key.")
    client_ca: str = setting(
        "",
        "PEM file of a CA: when set, every connection must present a client certificate it signed "
        "(mTLS; gRPC cannot ask for one without requiring it), and the certificate's common name is "
        "the caller's identity unless a bearer token is also sent. Pants 2.17 sends no client "
        "certificate: serve it from a bridge without client_ca, with tokens. Empty: no client certificates.",
    )


@dataclass(frozen=True)
class AuthConfig:
    """Who may do what. Off by default: every caller may do everything, which suits a bridge on
    loopback for its own user. On, a caller proves who it is with a bearer token (`reapi-bridge
    token create`) or a client certificate whose common name is an [[identities]] name, and
    holds permissions scoped by instance: read, cas-write, ac-write, execute, worker, admin."""

    enabled: bool = setting(False, "Check every call's credentials and permissions.")
    tokens_file: str = setting(
        "tokens.json",
        "The hashed tokens `reapi-bridge token` manages, re-read when it changes. Relative paths "
        "are resolved against [server].state_dir.",
    )
    anonymous_permissions: Tuple[str, ...] = setting(
        (), "Permissions (on every instance) of callers that present no credential, e.g. [\"read\"]."
    )
    audit_log: str = setting(
        "audit.log",
        "Where every refused call and every action-cache write is logged, one JSON object per line. "
        "Relative paths are resolved against [server].state_dir. Empty: no audit log.",
    )
    require_signed_results: bool = setting(
        False,
        "Serve only cached results signed by a trusted executor key ([[executor_keys]]); results "
        "written by clients are then never served. Signed results are checked either way.",
    )
    max_streams_per_client: int = setting(
        64,
        "Calls one client (an identity, or an address for anonymous callers) may have open at once; "
        "more are refused with RESOURCE_EXHAUSTED. 0: no limit.",
    )
    max_bytes_in_flight_per_client: int = setting(
        256 * MIB,
        "Bytes of uploads (BatchUpdateBlobs, ByteStream Write) one client may have in flight at once; "
        "more is refused with RESOURCE_EXHAUSTED. 0: no limit.",
    )


@dataclass(frozen=True)
class IdentityConfig:
    """A client-certificate identity: a certificate (signed by [tls].client_ca) whose common
    name is `name` holds these permissions on these instances."""

    name: str = setting("", "The certificate's common name (CN).")
    permissions: Tuple[str, ...] = setting(
        ("read",), "Permissions or roles: read, cas-write, ac-write, execute, worker, admin; roles "
        "reader, developer, ci, executor, admin."
    )
    instances: Tuple[str, ...] = setting(
        ("*",), "Instance scopes, matched per path component (`ci` covers `ci/arm64`); `*` is all."
    )


@dataclass(frozen=True)
class ExecutorKeyConfig:
    """An executor's Ed25519 public key (`reapi-bridge signing-key create` prints this table).
    Results signed by it are served; mark it revoked to stop serving them."""

    id: str = setting("", "The key id (16 hex digits of the SHA-256 of the raw public key).")
    public_key: str = setting("", "The raw 32-byte public key, base64.")
    executor: str = setting("", "Which executor holds it (for messages and the audit log).")
    revoked: bool = setting(False, "Results signed by a revoked key are not served.")


@dataclass(frozen=True)
class ObservabilityConfig:
    """Metrics and the web page: an HTTP port of its own serving /metrics (Prometheus), / (a
    page following builds live: executors, queues, cache, a timeline of recent actions) and
    the JSON API behind it (/api/summary, /api/actions, /api/invocations)."""

    http_listen: str = setting(
        "",
        "host:port of the HTTP port (port 0 picks a free one; the address goes to "
        "STATE_DIR/http-address). Empty: no HTTP port. `up` turns it on at 127.0.0.1:0.",
    )
    metrics: bool = setting(
        True, "Count and time every gRPC call and execution for /metrics (off: /metrics shows only the state gauges)."
    )
    recent_actions: int = setting(20000, "Finished actions the timeline and /api/actions keep.", minimum=1)


@dataclass(frozen=True)
class BridgeConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    cas: CasConfig = field(default_factory=CasConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    instances: Tuple[InstanceConfig, ...] = (InstanceConfig(),)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    identities: Tuple[IdentityConfig, ...] = ()
    executor_keys: Tuple[ExecutorKeyConfig, ...] = ()
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)

    def state_path(self, value: str) -> Optional[Path]:
        """A path setting resolved against the state dir; None when empty."""
        if not value:
            return None
        return self.server.state_dir / value

    def instance(self, name: str) -> Optional[InstanceConfig]:
        for inst in self.instances:
            if inst.name == name:
                return inst
        return None

    def with_overrides(
        self, *, listen: Optional[str] = None, state_dir: Optional[Path] = None, http_listen: Optional[str] = None
    ) -> "BridgeConfig":
        if http_listen is not None:
            http = _check_listen(http_listen, "--http-listen") if http_listen else ""
            return replace(self, observability=replace(self.observability, http_listen=http)).with_overrides(
                listen=listen, state_dir=state_dir
            )
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
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key}: expected a list of strings, got {value!r}")
        return tuple(value)
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
SECTIONS = (
    ("server", ServerConfig), ("cas", CasConfig), ("execution", ExecutionConfig), ("tls", TlsConfig), ("auth", AuthConfig),
    ("observability", ObservabilityConfig),
)
# Arrays of tables, after the sections.
TABLE_ARRAYS = (("instances", InstanceConfig), ("identities", IdentityConfig), ("executor_keys", ExecutorKeyConfig))
_KINDS = {"str": str, "bool": bool, "int": int, "float": float, "Path": str, "Tuple[str, ...]": tuple}


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


def _parse_array(data: Mapping[str, Any], name: str, cls: type) -> list:
    raw_items = data.get(name, [])
    if not isinstance(raw_items, list):
        raise ConfigError(f"[[{name}]]: expected an array of tables")
    items = []
    for i, raw in enumerate(raw_items):
        where = f"[[{name}]] #{i + 1}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        items.append(parse_section(raw, cls, where))
    return items


def _check_security(auth: AuthConfig, tls: TlsConfig, identities: list, keys: list) -> None:
    from reapi_bridge.common.permissions import parse_permissions

    try:
        parse_permissions(auth.anonymous_permissions, "[auth].anonymous_permissions")
        for i, ident in enumerate(identities):
            where = f"[[identities]] #{i + 1}"
            if not ident.name:
                raise ConfigError(f"{where}.name: must name the certificate's common name")
            parse_permissions(ident.permissions, f"{where}.permissions")
            if not ident.instances:
                raise ConfigError(f"{where}.instances: must name at least one instance scope (* for all)")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if bool(tls.cert_chain) != bool(tls.private_key):
        raise ConfigError("[tls]: cert_chain and private_key go together (set both for TLS, neither for plain text)")
    if tls.client_ca and not tls.cert_chain:
        raise ConfigError("[tls].client_ca: client certificates need TLS (set cert_chain and private_key)")
    for i, key in enumerate(keys):
        where = f"[[executor_keys]] #{i + 1}"
        if len(key.id) != 16 or any(c not in "0123456789abcdef" for c in key.id):
            raise ConfigError(f"{where}.id: expected 16 lower-case hex digits, got {key.id!r}")
        from reapi_bridge.auth.signing import key_id_of, parse_public_key

        try:
            public = parse_public_key(key.public_key, f"{where}.public_key")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if key_id_of(public) != key.id:
            raise ConfigError(f"{where}.id: {key.id!r} is not the id of that public key ({key_id_of(public)!r})")
    if auth.require_signed_results and not keys:
        raise ConfigError("[auth].require_signed_results: needs at least one [[executor_keys]] entry")


def parse_config(data: Mapping[str, Any]) -> BridgeConfig:
    _check_keys(data, {name for name, _ in SECTIONS} | {name for name, _ in TABLE_ARRAYS}, "config")
    server, cas, execution, tls, auth, observability = (
        parse_section(data.get(name, {}), cls, f"[{name}]") for name, cls in SECTIONS
    )
    if observability.http_listen:
        _check_listen(observability.http_listen, "[observability].http_listen")
    identities = _parse_array(data, "identities", IdentityConfig)
    keys = _parse_array(data, "executor_keys", ExecutorKeyConfig)
    _check_security(auth, tls, identities, keys)
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
    return BridgeConfig(
        server=server, cas=cas, execution=execution, instances=tuple(instances), tls=tls, auth=auth,
        identities=tuple(identities), executor_keys=tuple(keys), observability=observability,
    )


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
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
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
    for name, cls in TABLE_ARRAYS:
        table = f"[[{name}]]\n{_settings(cls)}"
        if name != "instances":  # examples only: none is configured by default
            table = "".join(f"# {line}\n" if line else "#\n" for line in table.splitlines())
        parts.append(f"\n{_comment(' '.join(cls.__doc__.split()))}{table}")
    return "".join(parts)
