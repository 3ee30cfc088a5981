"""A throwaway PostgreSQL + BuildGrid (with remote execution) on loopback, for end-to-end tests.

BuildGrid 0.4.4's scheduler, which its Execution and Bots services need, only accepts
PostgreSQL. So the harness is two context managers:

    with PostgresServer() as pg, BuildGridServer(pg, tmp_path / "buildgrid") as bgd:
        channel = grpc.insecure_channel(bgd.target)   # bgd.address is "grpc://127.0.0.1:PORT"
        ... executors attach to the Bots service, clients call Execute, both on bgd.instance_name

What has to be installed: `.ci/install-buildgrid` (Debian's postgresql package, and a CPython
3.11 venv at .crossbuild/buildgrid-exec-venv with buildgrid==0.4.4 and psycopg2-binary).

Only the standard library and grpcio/protobuf (for the readiness probe) are used here; BuildGrid
itself runs as a subprocess out of its own venv.

Facts about BuildGrid 0.4.4 this relies on (read from its buildgrid/server/app/settings/parser.py,
schema.yml and reference.yml):
- YAML tags: !sql-connection, !disk-storage, !lru-action-cache, !sql-scheduler,
  !dynamic-property-set, !priority-age-assigner, !action-cache, !execution, !bots, !cas,
  !bytestream. There is no !capabilities tag: the Capabilities service is always registered,
  for every instance that has a CAS, action cache or execution service.
- `!execution` enables the endpoints execution, operations and bots by default; here it gets
  `endpoints: [execution, operations]` and the Bots service is the separate `!bots` entry.
- OSFamily and ISA are always match keys of a dynamic property set (DEFAULT_PLATFORM_PROPERTY_KEYS);
  any other platform property an Action carries must be a listed match or wildcard key, or
  Execute fails with FAILED_PRECONDITION "Unregistered platform property".
- The instance name "" works: bot session names are then "/<uuid>", whose parent part is "".
- `max-job-attempts` of !sql-scheduler is accepted but ignored by 0.4.4 (load_sql_scheduler never
  passes it on): a job is always tried up to 5 times, so the harness does not offer it.
- The database must be migrated (`bgd migrate apply CONNECTION_STRING`) before `bgd server start`,
  and the connection string must use psycopg2 (`postgresql+psycopg2://`): BuildGrid's LISTEN/NOTIFY
  notifier calls psycopg2's Connection.poll().
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import grpc

from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc

VENV_ENV_VAR = "CROSSBUILD_BUILDGRID_VENV"
VENV_RELATIVE_PATH = Path(".crossbuild") / "buildgrid-exec-venv"
INSTALL_HINT = "run .ci/install-buildgrid"

StrPath = Union[str, "os.PathLike[str]"]


class HarnessError(RuntimeError):
    """Something the harness needs is missing, or a server did not come up."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(text: str, lines: int = 200) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def find_postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (Debian's layout).

    CROSSBUILD_PG_BINDIR overrides it; failing both, initdb/pg_ctl on PATH are used."""
    override = os.environ.get("CROSSBUILD_PG_BINDIR")
    candidates: List[Path] = []
    if override:
        candidates.append(Path(override))
    versions = glob.glob("/usr/lib/postgresql/*/bin")

    def version_key(path: str) -> tuple:
        name = Path(path).parent.name
        return tuple(int(p) if p.isdigit() else 0 for p in name.split("."))

    candidates.extend(Path(p) for p in sorted(versions, key=version_key, reverse=True))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "createdb")):
            return bindir
    raise HarnessError(
        "PostgreSQL server binaries (initdb, pg_ctl, createdb) were not found under "
        f"/usr/lib/postgresql/*/bin{' or ' + override if override else ''} nor on PATH: {INSTALL_HINT}"
    )


class PostgresServer:
    """A private PostgreSQL cluster on a free loopback port, with one database, trust auth.

    Run as root, the server runs as the `postgres` OS user (PostgreSQL refuses to run as root):
    its files live in a fresh directory under /tmp, mode 0o755 and owned by that user (pytest's
    tmp dirs may be 0o700 and so not traversable by it). Run as another user, it runs as that user.

    Attributes once entered: .port, .host, .user, .database, .connection_string (the psycopg2
    SQLAlchemy URL BuildGrid wants), .startup_seconds.
    """

    def __init__(
        self,
        *,
        user: str = "bgd",
        database: str = "bgd",
        os_user: Optional[str] = None,
        port: Optional[int] = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.user = user
        self.database = database
        self.host = "127.0.0.1"
        self.port = port or 0
        self.start_timeout = start_timeout
        if os_user is None:
            os_user = "postgres" if os.geteuid() == 0 else None
        self.os_user = os_user
        self.base_dir: Optional[Path] = None
        self.startup_seconds: Optional[float] = None
        self._started = False

    # -- paths --------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "postgres.log"

    @property
    def connection_string(self) -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"

    def log_text(self) -> str:
        return _read_text(self.log_path) if self.base_dir else ""

    # -- running commands as the server's OS user ---------------------------------------------
    def _as_os_user(self, argv: Sequence[str]) -> List[str]:
        if self.os_user is None:
            return list(argv)
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self.os_user, "--", *argv]
        return ["su", self.os_user, "-s", "/bin/sh", "-c", " ".join(_shell_quote(a) for a in argv)]

    def _run(self, argv: Sequence[str], what: str, timeout: float = 120.0) -> str:
        command = self._as_os_user(argv)
        try:
            proc = subprocess.run(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                cwd=str(self.base_dir) if self.base_dir else None,
                env=self._env(),
            )
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"{what} timed out after {timeout}s: {command}\n{e.output or ''}") from e
        if proc.returncode != 0:
            log = _tail(self.log_text(), 60)
            raise HarnessError(
                f"{what} failed (exit {proc.returncode}): {command}\n{proc.stdout}"
                + (f"\n--- postgres log ---\n{log}" if log else "")
            )
        return proc.stdout

    @staticmethod
    def _env() -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        return env

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "PostgresServer":
        started_at = time.monotonic()
        bindir = find_postgres_bindir()
        owner_uid = owner_gid = None
        if self.os_user is not None:
            try:
                entry = pwd.getpwnam(self.os_user)
            except KeyError as e:
                raise HarnessError(
                    f"the OS user {self.os_user!r} that runs PostgreSQL does not exist: {INSTALL_HINT}"
                ) from e
            owner_uid, owner_gid = entry.pw_uid, entry.pw_gid
            if owner_uid == 0:
                raise HarnessError("PostgreSQL cannot run as root; pass os_user= a non-root user")

        # /tmp explicitly when switching users: TMPDIR may be private to the current user.
        parent = "/tmp" if self.os_user is not None else None
        self.base_dir = Path(tempfile.mkdtemp(prefix="crossbuild-pg-", dir=parent))
        os.chmod(self.base_dir, 0o755)
        if owner_uid is not None:
            os.chown(self.base_dir, owner_uid, owner_gid)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data_dir),
                    "-A", "trust",
                    "-U", self.user,
                    "-E", "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                "initdb",
            )
            for attempt in range(3):
                port = self.port or free_loopback_port()
                options = " ".join(
                    [
                        f"-p {port}",
                        f"-k {self.base_dir}",
                        "-c listen_addresses=127.0.0.1",
                        # A test database: durability is not wanted, speed is.
                        "-c fsync=off",
                        "-c synchronous_commit=off",
                        "-c full_page_writes=off",
                        "-c max_connections=200",
                    ]
                )
                try:
                    self._run(
                        [
                            str(bindir / "pg_ctl"),
                            "-D", str(self.data_dir),
                            "-l", str(self.log_path),
                            "-o", options,
                            "-w",
                            "-t", str(int(self.start_timeout)),
                            "start",
                        ],
                        "pg_ctl start",
                        timeout=self.start_timeout + 10,
                    )
                except HarnessError:
                    # Most likely another process took the port between probe and bind.
                    if self.port or attempt == 2:
                        raise
                    continue
                self.port = port
                self._started = True
                break
            self._run(
                [str(bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, self.database],
                "createdb",
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started_at
        return self

    def stop(self) -> None:
        if self.base_dir is None:
            return
        if self._started:
            self._started = False
            try:
                bindir = find_postgres_bindir()
                self._run(
                    [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop"],
                    "pg_ctl stop",
                    timeout=40,
                )
            except HarnessError:
                self._kill_postmaster()
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.base_dir is not None:
            log = _tail(self.log_text(), 60)
            if log:
                print(f"--- PostgreSQL log ({self.log_path}) ---\n{log}", file=sys.stderr)
        self.stop()


def _shell_quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# --------------------------------------------------------------------------------------------
# BuildGrid
# --------------------------------------------------------------------------------------------


REQUIRE_ENV_VAR = "CROSSBUILD_REQUIRE_BUILDGRID"


@dataclass(frozen=True)
class BuildGridAvailability:
    """Whether a test module can run against BuildGrid here: its venv, or why it is skipped
    (never skipped when CROSSBUILD_REQUIRE_BUILDGRID is set: .ci/run makes absence a failure)."""

    venv: Optional[Path]
    skip: bool
    reason: str


def buildgrid_availability(test_name: str) -> BuildGridAvailability:
    venv = find_buildgrid_venv()
    reason = (
        f"BuildGrid venv not found (${VENV_ENV_VAR}, or .crossbuild/buildgrid-exec-venv above cwd "
        f"{os.getcwd()}): {INSTALL_HINT}, or set {REQUIRE_ENV_VAR}=1 to make this a failure"
    )
    skip = venv is None and not os.environ.get(REQUIRE_ENV_VAR)
    if skip:
        print(f"{test_name}: SKIPPING: {reason}", file=sys.stderr)
    return BuildGridAvailability(venv, skip, reason)


def find_buildgrid_venv(start: Optional[StrPath] = None) -> Optional[Path]:
    """The BuildGrid venv: $CROSSBUILD_BUILDGRID_VENV, else .crossbuild/buildgrid-exec-venv in the
    first of `start` (default: cwd) and its parents, then this file's dir and its parents, that
    has one. None when there is none (an env var naming a missing venv is also None)."""
    override = os.environ.get(VENV_ENV_VAR)
    if override:
        path = Path(override)
        return path if (path / "bin" / "bgd").exists() else None
    roots = [Path(start) if start else Path.cwd(), Path(__file__).resolve().parent]
    for root in roots:
        root = root.resolve()
        for directory in (root, *root.parents):
            candidate = directory / VENV_RELATIVE_PATH
            if (candidate / "bin" / "bgd").exists():
                return candidate
    return None


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value))


class BuildGridServer:
    """BuildGrid with CAS, ByteStream, ActionCache, Execution, Operations, Bots and Capabilities
    on 127.0.0.1, backed by `postgres` (a started PostgresServer) and a disk CAS.

    `work_dir` holds the disk CAS (cas/), the config (buildgrid.yml) and the log (buildgrid.log);
    it is created if missing and left in place (pass a pytest tmp_path).

    Attributes once entered: .address ("grpc://127.0.0.1:PORT"), .target ("127.0.0.1:PORT", for
    grpc.insecure_channel), .port, .instance_name (""), .config_path, .log_path,
    .migrate_seconds, .startup_seconds.
    """

    DEFAULT_MATCH_KEYS = ("ISA", "OSFamily")

    def __init__(
        self,
        postgres: PostgresServer,
        work_dir: StrPath,
        *,
        venv: Optional[StrPath] = None,
        instance_name: str = "",
        port: Optional[int] = None,
        match_property_keys: Sequence[str] = DEFAULT_MATCH_KEYS,
        wildcard_property_keys: Sequence[str] = (),
        bot_session_keepalive_timeout: int = 60,
        max_execution_timeout: int = 7200,
        session_expiry_timer_interval: float = 10.0,
        assigner_interval: float = 0.2,
        scheduler_options: Optional[Mapping[str, Union[str, int, float, bool]]] = None,
        verbosity: int = 2,
        start_timeout: float = 90.0,
    ) -> None:
        resolved = Path(venv) if venv else find_buildgrid_venv()
        if resolved is None or not (resolved / "bin" / "bgd").exists():
            if resolved:
                where = str(resolved)
            elif os.environ.get(VENV_ENV_VAR):
                where = f"${VENV_ENV_VAR}={os.environ[VENV_ENV_VAR]}"
            else:
                where = f"./{VENV_RELATIVE_PATH} (walking up from {Path.cwd()}; ${VENV_ENV_VAR} is unset)"
            raise HarnessError(f"no BuildGrid venv with bin/bgd at {where}: {INSTALL_HINT}")
        self.venv = resolved
        self.bgd = resolved / "bin" / "bgd"
        self.postgres = postgres
        self.work_dir = Path(work_dir)
        self.instance_name = instance_name
        self.port = port or 0
        self.match_property_keys = list(dict.fromkeys(match_property_keys))
        self.wildcard_property_keys = list(dict.fromkeys(wildcard_property_keys))
        self.bot_session_keepalive_timeout = bot_session_keepalive_timeout
        self.max_execution_timeout = max_execution_timeout
        self.session_expiry_timer_interval = session_expiry_timer_interval
        self.assigner_interval = assigner_interval
        self.scheduler_options = dict(scheduler_options or {})
        self.verbosity = verbosity
        self.start_timeout = start_timeout
        self.config_path = self.work_dir / "buildgrid.yml"
        self.log_path = self.work_dir / "buildgrid.log"
        self.storage_dir = self.work_dir / "cas"
        self.migrate_seconds: Optional[float] = None
        self.startup_seconds: Optional[float] = None
        self._proc: Optional[subprocess.Popen] = None
        self._log_file = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"grpc://{self.target}"

    def log_text(self) -> str:
        return _read_text(self.log_path)

    def _env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def config_text(self) -> str:
        keys = lambda ks: "[" + ", ".join(_q(k) for k in ks) + "]"  # noqa: E731
        extra = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in self.scheduler_options.items())
        return f"""\
# Written by reapi_bridge_testing.buildgrid for BuildGrid 0.4.4.
server:
  - !channel
    address: {_q(self.target)}
    insecure-mode: true

connections:
  - !sql-connection &sql
    connection-string: {_q(self.postgres.connection_string)}
    pool-size: 10
    max-overflow: 10

storages:
  - !disk-storage &cas-storage
    path: {_q(self.storage_dir)}

caches:
  - !lru-action-cache &action-cache
    storage: *cas-storage
    max-cached-refs: 1024
    allow-updates: true
    cache-failed-actions: false

schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas-storage
    action-cache: *action-cache
    property-set: !dynamic-property-set
      match-property-keys: {keys(self.match_property_keys)}
      wildcard-property-keys: {keys(self.wildcard_property_keys)}
    bot-session-keepalive-timeout: {int(self.bot_session_keepalive_timeout)}
    session-expiry-timer-interval: {float(self.session_expiry_timer_interval)}
    max-execution-timeout: {int(self.max_execution_timeout)}
    assigners:
      - !priority-age-assigner
        count: 1
        interval: {float(self.assigner_interval)}
        jitter-factor: {float(self.assigner_interval)}
{extra}
instances:
  - name: {_q(self.instance_name)}
    description: "crossbuild end-to-end test instance"
    services:
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
      - !action-cache
        cache: *action-cache
      - !execution
        scheduler: *scheduler
        endpoints: [execution, operations]
        operation-stream-keepalive-timeout: 30
      - !bots
        scheduler: *scheduler

thread-pool-size: 40
"""

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "BuildGridServer":
        if not self.postgres.port:
            raise HarnessError("BuildGridServer needs a started PostgresServer")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(parents=True, exist_ok=True)

        migrate_started = time.monotonic()
        try:
            migrate = subprocess.run(
                [str(self.bgd), "migrate", "apply", self.postgres.connection_string],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=180,
                env=self._env(),
                cwd=str(self.work_dir),
            )
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"bgd migrate apply timed out:\n{e.output or ''}") from e
        if migrate.returncode != 0:
            raise HarnessError(f"bgd migrate apply failed (exit {migrate.returncode}):\n{_tail(migrate.stdout)}")
        self.migrate_seconds = time.monotonic() - migrate_started

        started_at = time.monotonic()
        for attempt in range(3):
            self.port = self.port or free_loopback_port()
            self.config_path.write_text(self.config_text())
            try:
                self._spawn_and_wait()
            except HarnessError:
                self.stop()
                # A port lost between the probe and BuildGrid's bind: try another one.
                if attempt < 2 and "Unable to configure socket" in self.log_text():
                    self.port = 0
                    continue
                raise
            break
        self.startup_seconds = time.monotonic() - started_at
        return self

    def _spawn_and_wait(self) -> None:
        verbosity = ["-" + "v" * self.verbosity] if self.verbosity > 0 else []
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [str(self.bgd), "server", "start", *verbosity, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=str(self.work_dir),
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        last_error = "no attempt yet"
        while True:
            if self._proc.poll() is not None:
                raise HarnessError(
                    f"bgd server start exited with {self._proc.returncode} before serving "
                    f"(config {self.config_path}):\n{_tail(self.log_text())}"
                )
            # A plain TCP probe first: a gRPC channel that failed to connect backs off for
            # seconds before retrying, which would add that much to every startup.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError as e:
                last_error = f"connect: {e}"
            else:
                try:
                    with grpc.insecure_channel(self.target) as channel:
                        caps = re_grpc.CapabilitiesStub(channel).GetCapabilities(
                            re_pb2.GetCapabilitiesRequest(instance_name=self.instance_name), timeout=5
                        )
                    if caps.execution_capabilities.exec_enabled:
                        return
                    last_error = f"exec_enabled is false: {caps}"
                except grpc.RpcError as e:
                    last_error = f"GetCapabilities: {e.code()}: {e.details()}"
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"BuildGrid did not answer GetCapabilities on {self.target} within "
                    f"{self.start_timeout}s (last: {last_error}):\n{_tail(self.log_text())}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGTERM makes bgd stop its server; it arms a 20 s alarm for a stuck shutdown.
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "BuildGridServer":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is not None:
            print(f"--- BuildGrid log ({self.log_path}) ---\n{_tail(self.log_text())}", file=sys.stderr)
