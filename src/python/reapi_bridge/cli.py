"""`reapi-bridge`: the command line of the bridge."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

import grpc

from reapi_bridge.auth.commands import add_client_auth_args, add_security_commands, client_auth_from, run_security_command
from reapi_bridge.config import ConfigError, load_config, reference_toml
from reapi_bridge.cluster.local import default_executor_slots
from reapi_bridge.executor.workers.pool import WorkerSettings

DESCRIPTION = """\
reapi-bridge serves the Remote Execution API (REAPI v2): a content-addressable store, an
action cache, ByteStream and Capabilities, on one gRPC port. Point Pants at it with
  --remote-cache-read --remote-cache-write --remote-store-address=grpc://HOST:PORT
"""


def _add_state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML configuration file (see `reapi-bridge config` for every setting and its "
        "default). Without it, all defaults apply.",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="directory for the CAS, the action cache and runtime files; overrides "
        "[server].state_dir (default .reapi-bridge)",
    )


def _add_cluster_args(p: argparse.ArgumentParser) -> None:
    """What `up` and `supervise` (which `up` starts) share: where, how wide, with workers or not."""
    p.add_argument("--state-dir", type=Path, default=Path(".crossbuild/cluster"), metavar="DIR",
                   help="where the bridge, executors and logs keep their state (default: .crossbuild/cluster)")
    p.add_argument("--listen", default="127.0.0.1:8980", metavar="HOST:PORT",
                   help="address for the bridge's first start (default: 127.0.0.1:8980; port 0 picks a free "
                   "one, kept for every restart)")
    p.add_argument("--config", type=Path, metavar="FILE", help="bridge configuration file")
    p.add_argument("--concurrency", type=int, default=default_executor_slots(), metavar="N",
                   help="slots per executor: actions each one runs at once (default: the number of "
                   f"CPUs, at least 2; {default_executor_slots()} here). Each executor gets them all: the "
                   "emulated ARM64 executor's actions mostly wait on process start-up, and the two "
                   "executors are rarely busy at once")
    p.add_argument("--workers", action=argparse.BooleanOptionalAction, default=True,
                   help="serve actions marked for persistent workers through them (the default); "
                   "--no-workers has the executors run every action one-shot (results are the same)")
    p.add_argument("--http-listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="the bridge's HTTP port for /metrics, the status page and its JSON API (default: "
                   "127.0.0.1:0, a free port, kept for every restart; '' for none)")
    p.add_argument("--secure", action="store_true",
                   help="run it as a shared bridge would: TLS with a private CA, bearer tokens (executors "
                   "and a developer token without ac-write), executor-signed results required; files go "
                   "to STATE_DIR/secure and the Pants settings to use are printed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reapi-bridge", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="how much to log to stderr (default: info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    serve = sub.add_parser(
        "serve",
        help="serve the remote cache until stopped (Ctrl-C or SIGTERM)",
        description="Serve CAS, ActionCache, ByteStream and Capabilities on one gRPC port. "
        "Prints the address to stdout once serving; it is also written to STATE_DIR/address.",
    )
    _add_state_args(serve)
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to serve on; overrides [server].listen (default 127.0.0.1:8980). "
        "Port 0 picks a free port.",
    )
    serve.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help="serve /metrics (Prometheus), the status page (/) and its JSON API (/api/...) on this "
        "address; overrides [observability].http_listen (default: none). Port 0 picks a free port",
    )

    sub.add_parser(
        "config",
        help="print the configuration reference: every setting with its default",
        description="Print a complete configuration file with every setting, its default and "
        "what it does. Redirect it to a file to start your own.",
    )

    executor = sub.add_parser(
        "executor",
        help="run an executor that takes actions from a bridge (or BuildGrid) over the Bots API",
        description="Run actions for a REAPI server that speaks the Remote Workers API (this bridge, "
        "or BuildGrid). ISA=x86-64 runs natively on x86-64 hosts; ISA=arm-a64 runs natively on "
        "aarch64 hosts and in an emulated aarch64 userland (proot + qemu-user) on x86-64 hosts.",
    )
    executor.add_argument("--bridge", required=True, metavar="ADDR",
                          help="the server to take work from, grpc://HOST:PORT (grpcs:// for TLS)")
    add_client_auth_args(executor)
    executor.add_argument("--signing-key", type=Path, metavar="FILE",
                          help="Ed25519 key (`reapi-bridge signing-key create`) to sign every result with; "
                          "a bridge with [auth].require_signed_results serves only signed results")
    executor.add_argument("--isa", required=True, choices=["x86-64", "arm-a64"],
                          help="instruction set this executor offers (REAPI platform property ISA)")
    executor.add_argument("--os-family", default="linux",
                          help="REAPI platform property OSFamily (default: linux)")
    executor.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                          help="an extra platform property to advertise (repeatable)")
    executor.add_argument("--concurrency", type=int, default=1, metavar="N",
                          help="slots: actions run at once, each slot its own bot session named "
                          "NAME/0, NAME/1, ... (default: 1)")
    executor.add_argument("--work-dir", type=Path, default=Path(".crossbuild/executor"), metavar="DIR",
                          help="the executor's lock file, sandboxes and local input caches (default: "
                          ".crossbuild/executor). When actions run as another user (--run-as) who cannot "
                          "reach DIR, sandboxes and caches go to /var/tmp/crossbuild-executors/HASH instead "
                          "(the log says where)")
    executor.add_argument("--append-only-caches", type=Path, metavar="DIR",
                          default=Path("/tmp/crossbuild-append-only-caches"),
                          help="writable base path for Pants' append-only caches; must equal Pants' "
                          "[GLOBAL].remote_execution_append_only_caches_base_path "
                          "(default: /tmp/crossbuild-append-only-caches)")
    executor.add_argument("--instance", default="", help="REAPI instance name (default: none)")
    executor.add_argument("--cache-max-gib", type=float, default=20.0, metavar="GIB",
                          help="size limit of the local input cache; a cache over it is emptied when "
                          "the executor starts (default: 20)")
    executor.add_argument("--name", help="executor name in results and status (default: host-isa-pid)")
    executor.add_argument("--rootfs", type=Path, metavar="DIR",
                          help="aarch64 root filesystem for emulated ARM64 (built if missing; default: "
                          "next to --work-dir)")
    executor.add_argument("--run-as", default="nobody", metavar="USER",
                          help="when started as root, run actions as this user so they cannot write to "
                          "the shared input caches (default: nobody; '' to keep root)")
    executor.add_argument("--workers", action=argparse.BooleanOptionalAction, default=True,
                          help="serve actions marked for a persistent worker (platform property "
                          "persistentWorkerKey or persistentWorkerProtocol, argv ending in @FLAGFILE) "
                          "through long-lived worker processes; --no-workers runs them one-shot "
                          "(default: on)")
    executor.add_argument("--max-workers", type=int, default=WorkerSettings.max_total, metavar="N",
                          help="persistent workers this executor keeps at most, all keys together; the "
                          f"least recently used idle one makes room (default: {WorkerSettings.max_total})")
    executor.add_argument("--max-workers-per-key", type=int, default=WorkerSettings.max_per_key, metavar="N",
                          help="persistent workers of one key at most; a request finding them all busy runs "
                          f"one-shot (default: {WorkerSettings.max_per_key})")
    executor.add_argument("--worker-idle-timeout", type=float, default=WorkerSettings.idle_timeout_seconds,
                          metavar="SECONDS", help="a worker idle this long is stopped (default: "
                          f"{WorkerSettings.idle_timeout_seconds:g})")
    executor.add_argument("--worker-rss-limit-mib", type=int, default=WorkerSettings.rss_limit_bytes >> 20,
                          metavar="MIB", help="a worker whose processes together hold more resident memory "
                          "than this after a request is restarted (default: "
                          f"{WorkerSettings.rss_limit_bytes >> 20})")

    up = sub.add_parser(
        "up",
        help="start the embedded default in the background: a bridge, an x86-64 and an ARM64 executor",
        description="Start a supervisor in the background (see `supervise`) that runs reapi-bridge and "
        "one x86-64 and one ARM64 executor (emulated on x86-64 hosts) and restarts any of them that "
        "exits, unless it already runs from this state dir; wait until both executors have "
        "registered, then print the address to put in pants.toml. If the supervisor is gone but "
        "processes it started still run, those are stopped and everything starts afresh.",
    )
    _add_cluster_args(up)

    supervise = sub.add_parser(
        "supervise",
        help="run the embedded default in the foreground, restarting what exits (what `up` starts)",
        description="Start reapi-bridge, then one x86-64 and one ARM64 executor, and start again any "
        "of them that exits, after 1 s, doubling up to 30 s while it keeps exiting within a minute; "
        "the bridge always on the address it got first. Record each one's pid, start time, restarts "
        "and last exit in STATE_DIR/cluster.json. On SIGTERM or SIGINT stop the executors, then the "
        "bridge (SIGKILL after 30 s), and exit. Exits 1 if one of them cannot start the first time. "
        "`up` runs this in the background, logging to STATE_DIR/logs/supervisor.log.",
    )
    _add_cluster_args(supervise)

    status = sub.add_parser(
        "status",
        help="show executors, queues, cache size and hit rate of a running bridge",
        description="Ask a running bridge for its executors (name, properties, slots busy and free), "
        "queue lengths per platform, CAS size and action-cache hit rate. Without --bridge, also show "
        "the processes `up` runs: role, pid, time up, restarts and last exit.",
    )
    status.add_argument("--state-dir", type=Path, default=Path(".crossbuild/cluster"), metavar="DIR",
                        help="state dir given to `up` (default: .crossbuild/cluster)")
    status.add_argument("--bridge", metavar="ADDR", help="ask this bridge instead (grpc:// or grpcs://HOST:PORT)")
    add_client_auth_args(status)

    down = sub.add_parser("down", help="stop what `up` started", description="Stop the executors, then the bridge, started by `up`.")
    down.add_argument("--state-dir", type=Path, default=Path(".crossbuild/cluster"), metavar="DIR",
                      help="state dir given to `up` (default: .crossbuild/cluster)")

    add_security_commands(sub, _add_state_args)

    verify = sub.add_parser(
        "verify",
        help="re-hash every stored blob and check every cached result (bridge must be stopped)",
        description="Re-hash every blob in the CAS and check that each action-cache entry's "
        "blobs are present. Exits 1 if a blob is corrupt.",
    )
    _add_state_args(verify)
    return parser


def _serve(args) -> int:
    from reapi_bridge.auth.tls import TlsSetupError
    from reapi_bridge.server import Bridge, StateDirInUse

    config = load_config(args.config).with_overrides(
        listen=args.listen, state_dir=args.state_dir, http_listen=args.http_listen
    )
    try:
        bridge = Bridge(config)
        address = bridge.start()
    except (StateDirInUse, OSError, TlsSetupError) as exc:
        print(f"reapi-bridge: {exc}", file=sys.stderr)
        return 1
    print(address, flush=True)
    if bridge.http is not None:
        print(f"metrics and the status page: {bridge.http.address}", file=sys.stderr, flush=True)
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(3600):
        pass
    logging.getLogger(__name__).info("stopping")
    bridge.stop()
    return 0


def _verify(args) -> int:
    from reapi_bridge.actioncache.store import ActionCache
    from reapi_bridge.cas.store import ContentAddressableStorage
    from reapi_bridge.server import StatePaths

    config = load_config(args.config).with_overrides(state_dir=args.state_dir)
    paths = StatePaths(config.server.state_dir.resolve())
    if not paths.cas.is_dir():
        print(f"reapi-bridge: {paths.root} holds no CAS", file=sys.stderr)
        return 1
    cas = ContentAddressableStorage(paths.cas, max_bytes=config.cas.max_bytes, fsync=False)
    bad = cas.verify()
    stats = cas.stats()
    ac = ActionCache(paths.action_cache_db, cas)
    entries = ac.entries()
    served = sum(1 for inst, digest in entries if ac.get(inst, digest) is not None)
    print(f"blobs: {stats.blob_count} ({stats.total_bytes} bytes), corrupt: {len(bad)}")
    for digest in bad:
        print(f"  corrupt: {digest}")
    print(f"action results: {len(entries)}, complete: {served}")
    return 1 if bad else 0


PANTS_SNIPPET = """\
Use it from Pants (pants.toml, or flags):
  [GLOBAL]
  remote_execution = true
  remote_cache_read = true
  remote_cache_write = true
  remote_store_address = "{address}"
  remote_execution_address = "{address}"
"""


SECURE_PANTS_SNIPPET = """\
Use it from Pants (pants.toml): TLS against the cluster's own CA, a developer token (read,
cas-write, execute; results enter the cache only from the executors, signed):
  [GLOBAL]
  remote_execution = true
  remote_cache_read = true
  remote_cache_write = false
  remote_store_address = "{address}"
  remote_execution_address = "{address}"
  remote_ca_certs_path = "{ca}"
  remote_oauth_bearer_token_path = "{token}"
"""


def _cluster(args) -> int:
    from reapi_bridge.auth.tls import ClientAuth
    from reapi_bridge.cluster.local import ClusterError, LocalCluster, fetch_status
    from reapi_bridge.cluster.secure import SecureFiles

    cluster = LocalCluster(args.state_dir)
    try:
        if args.command == "up":
            if args.concurrency < 1:
                print("reapi-bridge up: --concurrency must be at least 1", file=sys.stderr)
                return 2
            address = cluster.up(
                args.listen, args.config, args.concurrency, workers=args.workers, secure=args.secure,
                http_listen=args.http_listen,
            )
            http = cluster.load().http_address
            if http:
                print(f"metrics and the status page: {http}/ (JSON API under {http}/api/, Prometheus {http}/metrics)",
                      file=sys.stderr)
            if address.startswith("grpcs://"):
                # Pants' TLS (rustls) accepts only a DNS name, never an IP address; the
                # certificate covers localhost too.
                address = address.replace("grpcs://127.0.0.1:", "grpcs://localhost:", 1)
            print(address)
            if address.startswith("grpcs://"):
                files = SecureFiles(cluster.state_dir / "secure")
                print(SECURE_PANTS_SNIPPET.format(address=address, ca=files.ca, token=files.developer_token), file=sys.stderr)
            else:
                print(PANTS_SNIPPET.format(address=address), file=sys.stderr)
            return 0
        if args.command == "down":
            cluster.down()
            return 0
        from reapi_bridge.status.report import format_report

        address = args.bridge or cluster.load().address
        if not address:
            print(f"reapi-bridge: nothing was started from {cluster.state_dir}; pass --bridge", file=sys.stderr)
            return 1
        given = client_auth_from(args)
        auth = given if (args.bridge or given != ClientAuth()) else cluster.client_auth()
        try:
            print(format_report(fetch_status(address, auth), address))
        finally:  # also when the bridge does not answer: then it matters most
            processes = "" if args.bridge else cluster.processes_report()
            if processes:
                print(processes)
        return 0
    except ClusterError as exc:
        print(f"reapi-bridge: {exc}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"reapi-bridge: the bridge did not answer: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


def _supervise(args) -> int:
    from reapi_bridge.cluster.local import supervise

    if args.concurrency < 1:
        print("reapi-bridge supervise: --concurrency must be at least 1", file=sys.stderr)
        return 2
    return supervise(
        args.state_dir, args.listen, args.config, args.concurrency, workers=args.workers, secure=args.secure,
        http_listen=args.http_listen,
    )


def _executor(args) -> int:
    from reapi_bridge.executor.main import ExecutorOptions, run_executor

    extra = {}
    for item in args.property:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"reapi-bridge executor: --property {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        extra[key] = value
    for flag, value, least in (
        ("--concurrency", args.concurrency, 1),
        ("--max-workers", args.max_workers, 1),
        ("--max-workers-per-key", args.max_workers_per_key, 1),
        ("--worker-idle-timeout", args.worker_idle_timeout, 1),
        ("--worker-rss-limit-mib", args.worker_rss_limit_mib, 1),
    ):
        if value < least:
            print(f"reapi-bridge executor: {flag} must be at least {least}", file=sys.stderr)
            return 2
    return run_executor(
        ExecutorOptions(
            bridge=args.bridge,
            isa=args.isa,
            os_family=args.os_family,
            extra_properties=extra,
            concurrency=args.concurrency,
            work_dir=args.work_dir,
            append_only_caches=args.append_only_caches,
            instance=args.instance,
            name=args.name,
            rootfs=args.rootfs,
            run_as=args.run_as or None,
            cache_max_bytes=int(args.cache_max_gib * (1 << 30)),
            client_auth=client_auth_from(args),
            signing_key=args.signing_key,
            workers=WorkerSettings(
                enabled=args.workers,
                max_total=args.max_workers,
                max_per_key=args.max_workers_per_key,
                idle_timeout_seconds=args.worker_idle_timeout,
                rss_limit_bytes=args.worker_rss_limit_mib << 20,
            ),
        )
    )


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "config":
            sys.stdout.write(reference_toml())
            return 0
        if args.command == "serve":
            return _serve(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "executor":
            return _executor(args)
        if args.command == "supervise":
            return _supervise(args)
        if args.command in ("up", "status", "down"):
            return _cluster(args)
        code = run_security_command(args)
        if code is not None:
            return code
    except ConfigError as exc:
        print(f"reapi-bridge: {exc}", file=sys.stderr)
        return 2
    return 2
