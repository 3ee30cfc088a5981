"""`reapi-bridge executor`: an x86-64 or ARM64 executor that takes work over the Bots API."""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional


from reapi_bridge.auth.signing import SigningError, SigningKey
from reapi_bridge.auth.tls import ClientAuth, TlsSetupError, open_channel
from reapi_bridge.executor.action_root import ActionRootError, action_root, check_reachable, reachable_copy
from reapi_bridge.executor.action_runner import ActionRunner
from reapi_bridge.executor.users import RunAs
from reapi_bridge.executor.workers.pool import WorkerPool, WorkerSettings
from reapi_bridge.executor.workers.runner import WorkerRunner
from reapi_bridge.executor.wrappers import CommandWrapper, Direct
from reapi_bridge.executor.bot import BotSlot
from reapi_bridge.client.client import Client
from reapi_bridge.executor.inputs import InputMaterializer, remove_tree

logger = logging.getLogger(__name__)

HOST_ISA = {"x86_64": "x86-64", "amd64": "x86-64", "aarch64": "arm-a64", "arm64": "arm-a64"}
DEFAULT_APPEND_ONLY_CACHES = Path("/tmp/crossbuild-append-only-caches")
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 30000),
]


class ExecutorSetupError(Exception):
    pass


@dataclass(frozen=True)
class ExecutorOptions:
    bridge: str
    isa: str
    os_family: str = "linux"
    extra_properties: Dict[str, str] = None  # type: ignore[assignment]
    concurrency: int = 1
    work_dir: Path = Path(".crossbuild/executor")
    append_only_caches: Path = DEFAULT_APPEND_ONLY_CACHES
    instance: str = ""
    name: Optional[str] = None
    rootfs: Optional[Path] = None
    run_as: Optional[str] = "nobody"
    cache_max_bytes: int = 20 << 30
    workers: WorkerSettings = WorkerSettings()
    # How to reach the bridge (grpcs:// or a CA means TLS) and who this executor is.
    client_auth: ClientAuth = ClientAuth()
    # The Ed25519 key this executor signs its results with (`reapi-bridge signing-key create`).
    signing_key: Optional[Path] = None

    @property
    def properties(self) -> Dict[str, str]:
        props = {"OSFamily": self.os_family, "ISA": self.isa}
        props.update(self.extra_properties or {})
        return props


def command_wrapper(options: ExecutorOptions, root: Path, run_as: Optional[RunAs]) -> CommandWrapper:
    """How processes run for this ISA on this host; proves it before any work is taken. proot
    reads the emulated userland's rootfs as the action user, so that must be reachable too."""
    host = HOST_ISA.get(platform.machine().lower())
    if options.isa == host:
        return Direct()
    if options.isa == "arm-a64" and host == "x86-64":
        from reapi_bridge.executor import arm64_userland

        rootfs = (options.rootfs or options.work_dir.parent / "arm64-rootfs").resolve()
        if not (rootfs / "bin" / "busybox").exists():
            logger.info("building the aarch64 userland at %s", rootfs)
            arm64_userland.build_rootfs(rootfs)
        if run_as is not None:
            rootfs = reachable_copy(rootfs, root / "arm64-rootfs", run_as, _same_userland)
        userland = arm64_userland.Arm64Userland.detect(rootfs)
        machine = arm64_userland.prove_aarch64(userland)
        logger.info("emulated userland answers uname -m = %s", machine)
        return userland
    raise ExecutorSetupError(
        f"this {platform.machine()} host cannot run ISA={options.isa} actions "
        "(x86-64 hosts run x86-64 natively and arm-a64 emulated; aarch64 hosts run arm-a64)"
    )


def _same_userland(a: Path, b: Path) -> bool:
    from reapi_bridge.executor.arm64_userland import read_stamp

    return read_stamp(b) is not None and read_stamp(a) == read_stamp(b)


def action_user(options: ExecutorOptions) -> Optional[RunAs]:
    """Who actions run as: `run_as` when this executor is root, else None (this process's user)."""
    if not options.run_as or os.geteuid() != 0:
        return None
    try:
        run_as = RunAs.user(options.run_as)
    except KeyError:
        raise ExecutorSetupError(f"--run-as user {options.run_as!r} does not exist")
    if not Path("/usr/bin/setpriv").exists():
        raise ExecutorSetupError("running actions as another user needs /usr/bin/setpriv (util-linux)")
    return run_as


class Executor:
    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options
        self.name = options.name or f"{socket.gethostname()}-{options.isa}-{os.getpid()}"
        work = options.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(work / "executor.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ExecutorSetupError(f"work dir {work} is in use by another executor; give each its own --work-dir")
        try:
            self._set_up(options, work)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _set_up(self, options: ExecutorOptions, work: Path) -> None:
        run_as = action_user(options)
        try:
            # Sandboxes, input caches and the emulated rootfs go where the action user reaches.
            self.action_root = action_root(work, run_as)
            if run_as is not None:
                check_reachable(options.append_only_caches.resolve(), run_as)
        except ActionRootError as exc:
            raise ExecutorSetupError(str(exc)) from None
        wrapper = command_wrapper(options, self.action_root, run_as)
        try:
            signing_key = SigningKey.load(options.signing_key) if options.signing_key else None
            self.channel = open_channel(options.bridge, options.client_auth, CHANNEL_OPTIONS)
        except (SigningError, TlsSetupError) as exc:
            raise ExecutorSetupError(str(exc)) from None
        cas = Client(self.channel, options.instance)
        materializer = InputMaterializer(cas, self.action_root / "cache", max_bytes=options.cache_max_bytes)
        # Sandboxes left by a killed predecessor are garbage; their actions were requeued.
        sandboxes = self.action_root / "sandboxes"
        if sandboxes.is_dir():
            for leftover in sandboxes.iterdir():
                remove_tree(leftover)
        self.pool = WorkerPool(options.workers)
        workers = WorkerRunner(
            self.pool,
            cas,
            materializer,
            self.action_root / "workers",
            wrapper=wrapper,
            run_as=run_as,
            instance=options.instance,
            append_only_caches=options.append_only_caches,
        )
        # Worker homes left by a killed predecessor: their processes died with it.
        if workers.home.is_dir():
            for leftover in workers.home.iterdir():
                remove_tree(leftover)
        self.slots: List[BotSlot] = []
        for i in range(options.concurrency):
            runner = ActionRunner(
                cas,
                materializer,
                sandboxes,
                f"{self.name}/{i}",
                wrapper=wrapper,
                append_only_caches=options.append_only_caches,
                run_as=run_as,
                workers=workers,
            )
            self.slots.append(
                BotSlot(
                    self.channel, runner, f"{self.name}/{i}", options.properties,
                    instance=options.instance, workers=self.pool, signing_key=signing_key,
                )
            )
        self._threads: List[threading.Thread] = []

    def start(self) -> None:
        for slot in self.slots:
            t = threading.Thread(target=slot.serve, name=f"bot-{slot.bot_id}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, wait: bool = True) -> None:
        for slot in self.slots:
            slot.stop()
        if wait:
            for t in self._threads:
                t.join(timeout=60)
        self.pool.close()
        self.channel.close()
        os.close(self._lock_fd)


def run_executor(options: ExecutorOptions) -> int:
    try:
        executor = Executor(options)
    except ExecutorSetupError as exc:
        print(f"reapi-bridge executor: {exc}", flush=True)
        return 1
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    executor.start()
    print(f"executor {executor.name} serving {options.properties} for {options.bridge}", flush=True)
    while not stopping.wait(3600):
        pass
    executor.stop()
    return 0
