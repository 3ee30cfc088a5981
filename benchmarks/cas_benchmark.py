"""Storage benchmark: reapi_bridge against BuildGrid 0.4.4, in one run on this machine.

Run it with `benchmarks/run-cas-benchmark` (which builds the two virtualenvs it needs).

What runs: each server is started as a subprocess on a free loopback port, with a fresh state
directory under a temporary directory, and is polled with GetCapabilities until it answers.
The same client workload (grpcio with the bridge's generated stubs, on one channel allowing
64 MiB messages, instance name "") is then run against it, and the server is stopped before the
next one starts: the two servers never run at the same time, but the client (this process) and
the server under test share the machine's cores. What is measured:

  a. ByteStream Write of a random blob (256 MiB by default) sent in 1 MiB chunks to
     `uploads/{uuid}/blobs/{hash}/{size}`: MB/s (10^6 bytes/s), best of 3; each repetition
     writes a fresh blob, so nothing dedups.
  b. ByteStream Read of those blobs (`blobs/{hash}/{size}`), MB/s, best of 3; the client
     checks the SHA-256 and the size of what it read.
  c. FindMissingBlobs over 10,000 digests, 5,000 of them uploaded first with BatchUpdateBlobs
     (in batches within the server's advertised limit) and 5,000 never uploaded: median ms
     over 5 calls; the answer must be exactly the absent half.
  d. Single-blob BatchUpdateBlobs (one blob of 100-2,000 random bytes per request, as Pants
     uploads small files): 3,000 requests from --concurrency client threads, requests/s.
     The small blobs of c and d come from a seeded generator: both servers get the same ones.
  e. The machine's own limit, without the network: SHA-256 of a blob of the same size while
     writing it to a file (under the same temporary directory) in 1 MiB chunks, then fsync;
     also hash only and write+fsync only. MB/s, best of 3.
  f. Each server's resident memory (psutil, its process and children, sampled every 50 ms in a
     thread): idle after start-up, the peak during the writes and during the reads, and the
     larger peak's growth over idle; a server that buffers whole blobs grows by the blob size.

BuildGrid serves as a plain remote cache (disk storage, LRU action cache, no execution), and
its disk storage does not fsync; the bridge runs with its defaults, which fsync every blob.

A figure that failed (an RPC error, a wrong answer, a server that did not start) is shown as
ERR and explained under the table. The targets are ratios within this run; a miss is reported,
never turned into a non-zero exit: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from cas_measure import DEFAULT_BGD, MIB, SERVERS, Workload, bench_machine, bench_server
from cas_report import json_report, print_report


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SERVERS, help="benchmark one server only")
    parser.add_argument(
        "--blob-mib", type=int, help="size of the ByteStream blob (default 256; 8 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client threads for single-blob updates (default 8)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write all figures to this JSON file"
    )
    parser.add_argument("--bgd", default=str(DEFAULT_BGD), help="BuildGrid's bgd executable")
    parser.add_argument(
        "--work-dir", type=Path, help="parent of the temporary directory (default: the system's)"
    )
    return parser.parse_args(argv)


def make_workload(args: argparse.Namespace) -> Workload:
    blob_mib = args.blob_mib or (8 if args.quick else 256)
    if args.quick:
        return Workload(blob_mib * MIB, 500, 500, 300, args.concurrency)
    return Workload(blob_mib * MIB, 5000, 5000, 3000, args.concurrency)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    workload = make_workload(args)
    servers = [args.only] if args.only else list(SERVERS)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cas-benchmark-", dir=args.work_dir) as tmp:
        work_dir = Path(tmp)
        print("[machine] hashing and writing to disk", file=sys.stderr)
        machine = bench_machine(workload.blob_bytes, work_dir)
        results = {name: bench_server(name, args, workload, work_dir) for name in servers}
        print_report(workload, results, machine, work_dir, load_before)
    if args.json:
        args.json.write_text(
            json.dumps(json_report(workload, results, machine, load_before), indent=2) + "\n"
        )
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
