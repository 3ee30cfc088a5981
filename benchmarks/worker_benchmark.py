"""Persistent-worker benchmark: per-action overhead one-shot vs through a worker, on the x86-64
executor (native) and the ARM64 executor (emulated: proot + qemu-user), in one run.

Run it with `benchmarks/run-worker-benchmark` (it reuses the CAS benchmark's bench venv).

What runs: a bridge and two executors in this process (as `up` runs them, over real gRPC on
loopback; two slots each, actions run as `nobody` when root), and a plain REAPI client. The
trivial action is `/bin/sh tools/worker.sh @args/request.flags` (reapi_bridge_testing/
sh_worker.py): one-shot it prints a line and exits; as a worker (platform property
persistentWorkerProtocol=json) it answers each request with shell built-ins only, starting no
program. Every action is new (its flag file differs), is executed with skip_cache_lookup, and
runs alone (one at a time), so each figure is one action's cost:

  a. round trip: Execute sent until the finished operation arrived, at the client, ms;
  b. on the executor: ExecutedActionMetadata worker_start to worker_completed (inputs staged,
     the process or request, outputs and logs uploaded), ms: the per-action overhead;
  c. the process or request alone: execution_start to execution_completed, ms.

p50 and p95 over --actions actions per (executor, mode); the worker's first request (which
starts the worker, inside one proot session on ARM64) is left out of those and shown on its
own. Ratios are worker / one-shot within this run. Target: on the emulated ARM64 executor the
per-action overhead (b, p50) with a worker is at most 0.3x one-shot.

A report, not a test: a missed target is printed, never turned into a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from worker_measure import measure
from worker_report import json_report, print_report


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=40, help="actions per executor and mode (default 40)")
    parser.add_argument("--only", choices=["x86-64", "arm-a64"], help="one executor only")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    isas = [args.only] if args.only else ["x86-64", "arm-a64"]
    figures = measure(isas, args.actions, log=lambda text: print(text, file=sys.stderr, flush=True))
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(json_report(figures), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
