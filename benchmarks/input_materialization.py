"""Per-action input set-up for a large repeated input (a toolchain-sized tree).

Builds a tree of 20,000 small files in 400 directories (the shape of zig's lib/ tree) under
one `toolchain/` directory plus a few per-action source files, uploads it to an in-process
bridge, then materialises the input root three times with one executor cache:
  cold   — nothing cached: every file fetched and linked, the big directory cached once;
  warm   — same toolchain, new per-action files: one symlink for the toolchain;
and, for comparison, the per-file cost: linking every one of the 20,000 files again.
Prints milliseconds; never fails on time.

    PYTHONPATH=src/python python benchmarks/input_materialization.py [--files 20000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.client.client import Client
from reapi_bridge.executor.inputs import InputMaterializer, remove_tree
from reapi_bridge_testing.bridge import client_for, make_test_config, running_bridge, upload_directory


def tree(files: int, salt: str) -> dict:
    per_dir = 50
    content = {}
    for i in range(files):
        content[f"toolchain/lib/d{i // per_dir:04d}/f{i:05d}.h"] = f"// header {i}\n".encode()
    content["src/main.c"] = f"int main(void) {{ return 0; }} /* {salt} */\n".encode()
    return content


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="input-bench-"))
    try:
        with running_bridge(make_test_config(work / "bridge")) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
            roots = []
            for salt in ("a", "b", "c"):
                roots.append(BlobDigest.from_proto(upload_directory(client, tree(args.files, salt))))
            cas = Client(client.channel)
            m = InputMaterializer(cas, work / "cache")
            cold = timed(lambda: m.materialize(roots[0], work / "s1"))
            warm1 = timed(lambda: m.materialize(roots[1], work / "s2"))
            warm2 = timed(lambda: m.materialize(roots[2], work / "s3"))
            for s in ("s1", "s2", "s3"):
                remove_tree(work / s)
            # The per-file alternative: a hard link for each file, every action.
            flat = InputMaterializer(cas, work / "cache-flat", dir_threshold=10**9)
            flat.materialize(roots[0], work / "f1")
            per_file = timed(lambda: flat.materialize(roots[1], work / "f2"))
        print(f"input tree: {args.files} toolchain files in {args.files // 50} directories + 1 source file")
        print(f"cold set-up (fetch + link + cache the toolchain dir): {cold:8.1f} ms")
        print(f"warm set-up, directory cache (one symlink):            {warm1:8.1f} ms, {warm2:.1f} ms")
        print(f"warm set-up, a hard link per file:                     {per_file:8.1f} ms")
        print(f"ratio warm per-file / warm directory cache:            {per_file / max(warm1, 0.001):8.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
