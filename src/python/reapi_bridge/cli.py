"""`reapi-bridge`: the command line of the bridge."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

from reapi_bridge.config import DEFAULT_CONFIG_TOML, ConfigError, load_config

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

    sub.add_parser(
        "config",
        help="print the configuration reference: every setting with its default",
        description="Print a complete configuration file with every setting, its default and "
        "what it does. Redirect it to a file to start your own.",
    )

    verify = sub.add_parser(
        "verify",
        help="re-hash every stored blob and check every cached result (bridge must be stopped)",
        description="Re-hash every blob in the CAS and check that each action-cache entry's "
        "blobs are present. Exits 1 if a blob is corrupt.",
    )
    _add_state_args(verify)
    return parser


def _serve(args) -> int:
    from reapi_bridge.server import Bridge, StateDirInUse

    config = load_config(args.config).with_overrides(listen=args.listen, state_dir=args.state_dir)
    try:
        bridge = Bridge(config)
        address = bridge.start()
    except (StateDirInUse, OSError) as exc:
        print(f"reapi-bridge: {exc}", file=sys.stderr)
        return 1
    print(address, flush=True)
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
    from reapi_bridge.action_cache import ActionCache
    from reapi_bridge.cas import ContentAddressableStorage
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


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "config":
            sys.stdout.write(DEFAULT_CONFIG_TOML)
            return 0
        if args.command == "serve":
            return _serve(args)
        if args.command == "verify":
            return _verify(args)
    except ConfigError as exc:
        print(f"reapi-bridge: {exc}", file=sys.stderr)
        return 2
    return 2
