"""Observability benchmark: what the metrics cost on the bridge's hot path, against a bridge
with them off, in one run on this machine; and how fast the status page first draws 10,000
actions.

Run it with `benchmarks/run-observability-benchmark` (which builds the virtualenv it needs).

What runs for the hot path: two bridges, each `python -m reapi_bridge serve` as a subprocess
(the same way, from this tree) with a config file, on a free loopback port with a fresh state
directory under a temporary directory, plain text, [auth] off:

  off  [observability] metrics = false and no HTTP port.
  on   [observability] metrics = true, http_listen = "127.0.0.1:0": every gRPC call goes
       through MetricsInterceptor, and a thread of this process GETs /metrics once a second
       for as long as the gRPC figures run, as a Prometheus server would.

Both run at once; each figure is measured in slices that alternate between them (off first,
then on first, ...), so a change in the machine's load falls on both. The client and the
bridge under test share the cores.

  a. Single-blob BatchUpdateBlobs (one blob of 100-2,000 random bytes per call, as Pants
     uploads small files), as in the security benchmark (security_measure.bench_updates):
     per repetition 1,000 new seeded blobs (the same to both bridges), sent in slices of 50
     calls (200 with threads) alternating between the bridges; requests/s, median of the
     repetitions; from 1 thread and from --concurrency threads (default 4). From the 1-thread
     runs also the CPU time per call of the bridge's process and of this process (psutil).
  b. Execute answered from the action cache: one ActionResult of 20 output files (its blobs
     uploaded first) stored with UpdateActionResult, then Execute on its action, 2,000 calls
     per bridge in slices of 25 alternating between them; each call is the round trip of
     the call and its one-message stream to the end: the Execution service, the cache lookup
     (the result's blobs checked in the CAS), the timeline record and, on "on", the metrics
     interceptor. That is the bridge's own per-Execute cost without an executor. p50 and p95
     in ms.
  c. In this process, no network: what gRPC's server does per unary call to find a handler
     and call it, for a handler that does nothing, through MetricsInterceptor (on:
     intercept_service, which gRPC runs for every call, then the wrapped behavior with its
     counter and histogram) and without it (off); microseconds, median of 20,000 calls. The
     difference is the metrics' cost per call, to set against (a) and (b) per call.

The target is a ratio within this run: metrics on at most 5% slower than off, that is updates/s
(both thread counts) on >= 0.95x off and Execute p50 on <= 1.05x off. A miss is reported, never
turned into a non-zero exit: this is a report, not a test. A figure that failed is shown as ERR
and explained under the table. On a shared machine a few percent is within the noise: compare
several runs, or the CPU per call, before reading a miss as the metrics' cost.

The page: an in-process bridge with its HTTP port, `observability.synthetic.fill` putting
10,000 finished actions in its recorder (no executors, nothing queued), then:

  d. /api/actions?since=0, what the page fetches first: the response's size in bytes and the
     time from the request to its last byte (urllib, median of --page-loads, default 5).
  e. The page in real time: a fresh headless Chromium per load (Debian's `chromium`, a new
     profile each time) driven over the DevTools protocol on a pipe, no virtual time; a
     script added before the page's own notes performance.now() when app.js sets
     data-first-render-ms on <body>, and again two animation frames later; this process
     polls until then and reads <body> from the DOM (html.parser). Three figures, medians:
     data-first-render-ms itself (app.js's own: from its start to the end of its first full
     draw: the three API calls, parsing 10,000 actions, the lanes laid out and drawn on the
     canvas), navigation start to that draw, and navigation start to the draw on screen.
  f. The page through `observability.browser.render` as the page's test loads it
     (--virtual-time-budget, here 500 ms: one poll, the next one is a second later): the same
     data-first-render-ms from the dumped DOM, and the wall-clock time of that chromium run
     next to one on about:blank with the same budget.

Under --virtual-time-budget Chromium's clock is virtual: performance.now() advances only when
the virtual clock is pumped, and a fetch pauses it. Checked on this machine with a page that
fetches from a server answering after 500 ms, then loops on the CPU, then waits on a 300 ms
timer: loaded in real time (as in e) the page measured 517 ms for the fetch and 326 ms for the
loop; under --virtual-time-budget=8000, 60 ms and 0.0 ms (the timer: 300 ms either way). So
(f)'s data-first-render-ms is not the page's time; (e) is. The difference of (f)'s wall-clock
times is a rough cross-check of (e), with Chromium's start and exit in the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from observability_measure import Workload, run
from observability_report import json_report, print_report

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "dist" / "observability-benchmark.json"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repetitions", type=int, help="repetitions of the update figures (default 5; 2 with --quick)"
    )
    parser.add_argument(
        "--page-loads", type=int, help="loads of the page per way of loading it (default 5; 2 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="client threads for the concurrent updates (default 4)"
    )
    parser.add_argument(
        "--actions", type=int, default=10000, help="synthetic actions behind the page (default 10000)"
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
    repetitions = args.repetitions or (2 if args.quick else 5)
    page_loads = args.page_loads or (2 if args.quick else 5)
    if args.quick:
        return Workload(repetitions, 200, args.concurrency, 200, 20, args.actions, page_loads, 2000)
    return Workload(repetitions, 1000, args.concurrency, 2000, 20, args.actions, page_loads, 20000)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    workload = make_workload(args)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="observability-benchmark-", dir=args.work_dir) as tmp:
        work_dir = Path(tmp)
        results = run(workload, work_dir)
        print_report(workload, results, work_dir, load_before)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(json_report(workload, results, load_before), indent=2) + "\n")
    print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
