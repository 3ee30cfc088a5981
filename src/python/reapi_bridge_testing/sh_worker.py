"""A persistent worker written in POSIX sh (JSON framing), so it runs wherever a shell does:
natively, and in the emulated aarch64 userland (busybox ash) where nothing else is installed.
Tests and the worker benchmark send it as a tool input and run `/bin/sh tools/worker.sh`.

It answers every request at once without starting any program (only shell built-ins), so a
request costs what the protocol and the executor cost: the trivial action of the benchmark.
One-shot (`@FLAGFILE` without `--persistent_worker`) it prints one line to stderr and exits.
"""

SCRIPT = r"""#!/bin/sh
# A JSON persistent worker in plain sh: one response per request line, built-ins only.
if [ "$1" != "--persistent_worker" ]; then
  echo "pid=one-shot count=1" >&2
  exit 0
fi
arch=$(uname -m)
n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '{"exitCode":0,"output":"pid=%s count=%s arch=%s request_bytes=%s\\n"}\n' "$$" "$n" "$arch" "${#line}"
done
"""

PATH_IN_INPUTS = "tools/worker.sh"


def argv(flagfile: str = "args/request.flags"):
    return ["/bin/sh", PATH_IN_INPUTS, "@" + flagfile]
