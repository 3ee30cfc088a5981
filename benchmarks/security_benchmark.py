"""Security benchmark: what TLS, bearer tokens and signed results cost, against a plain-text
bridge with authentication off, in one run on this machine.

Run it with `benchmarks/run-security-benchmark` (which builds the virtualenv it needs).

What runs: two bridges, each `python -m reapi_bridge serve` as a subprocess (the same way, from
this tree) on a free loopback port with a fresh state directory under a temporary directory:

  plain   the defaults: plain-text HTTP/2, [auth] off.
  secure  a config file with [tls] (a CA and a server certificate for localhost and 127.0.0.1
          made by auth.certs.issue, as `reapi-bridge certs` does), [auth] enabled = true with an
          admin bearer token created in its tokens file through TokenStore (as `reapi-bridge
          token create` does), one [[executor_keys]] entry and require_signed_results = true;
          the per-client limits stay at their defaults.

The client (this process) reaches the plain bridge over an insecure channel and the secure one
through `auth.tls.open_channel(address, ClientAuth(ca=..., token_file=...))`, each one channel
allowing 64 MiB messages, instance name "". Both bridges run at once; each figure is measured
in repetitions that alternate between them (plain first, then secure first, ...), so a change
in the machine's load falls on both. The client and the bridge under test share the cores.

  a. ByteStream Write of a fresh random blob (64 MiB by default) in 1 MiB chunks, the same
     blob to both bridges in each repetition (separate state dirs: nothing dedups): MB/s
     (10^6 bytes/s), median of the repetitions (5 by default).
  b. ByteStream Read of those blobs, hashed and checked as they arrive: MB/s, median.
  c. Single-blob BatchUpdateBlobs (one blob of 100-2,000 random bytes per call, as Pants
     uploads small files): per repetition 1,000 new seeded blobs (the same to both bridges),
     sent in slices of 50 calls (200 with threads) alternating between the bridges;
     requests/s, median; once from 1 thread, once from --concurrency threads (default 4).
     From the 1-thread runs also the CPU time per call (psutil, clock ticks summed over the
     slices) of the bridge's process and of this process, the client: where the time goes.
  d. GetActionResult round trip: one ActionResult of 20 output files with stdout, stderr and
     execution metadata, its blobs uploaded first, stored with UpdateActionResult (on the
     secure bridge signed with the executor key and written with the admin token), then read
     back 500 times in all, in slices of 25 alternating between the bridges; p50 and p95 in ms. On the secure bridge each hit checks the token
     and verifies the signature.
  e. In this process, no network: sign_result on such a result (the executor's cost per
     action; a fresh unsigned copy each time, the copy not timed), and ResultVerifier.problem
     as each bridge runs it per hit (secure: the trusted key, signatures required, on the
     signed result; plain: no keys, on the unsigned result). Microseconds, median of 2,000.

Both bridges fsync every blob (their default), so on disk the figures include the file
system's cost of creating files, which varies with where ext4 places each state dir: profiled,
a bridge can spend several hundred microseconds per small upload allocating inodes in one run
and not the next, whichever of the two it is. `--work-dir /dev/shm` takes the disk out and
leaves what the security layers themselves cost.

The target is a ratio within this run: CAS throughput (a, b and c) of the secure bridge within
15% of the plain one's. A miss is reported, never turned into a non-zero exit: this is a
report, not a test. A figure that failed is shown as ERR and explained under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from security_measure import MIB, Workload, run
from security_report import json_report, print_report

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "dist" / "security-benchmark.json"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--blob-mib", type=int, help="size of the ByteStream blob (default 64; 8 with --quick)"
    )
    parser.add_argument(
        "--repetitions", type=int, help="repetitions per figure (default 5; 2 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="client threads for the concurrent updates (default 4)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        default=DEFAULT_JSON,
        help=f"where to write all figures as JSON (default {DEFAULT_JSON.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="parent of the temporary directory (default: the system's)"
    )
    return parser.parse_args(argv)


def make_workload(args: argparse.Namespace) -> Workload:
    blob_mib = args.blob_mib or (8 if args.quick else 64)
    repetitions = args.repetitions or (2 if args.quick else 5)
    if args.quick:
        return Workload(blob_mib * MIB, repetitions, 200, args.concurrency, 200, 50, 20)
    return Workload(blob_mib * MIB, repetitions, 1000, args.concurrency, 2000, 500, 20)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    workload = make_workload(args)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="security-benchmark-", dir=args.work_dir) as tmp:
        work_dir = Path(tmp)
        results = run(workload, work_dir)
        print_report(workload, results, work_dir, load_before)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(json_report(workload, results, load_before), indent=2) + "\n")
    print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
