"""`greet [--shout] [NAME...]`: greets each NAME (or each line of standard input with `-`).

Exit status: 0 on success, 2 on a usage error, so the launcher's pass-through shows.
"""

import sys

from greeter.words import greeting


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    shout = "--shout" in args
    names = [a for a in args if a != "--shout"]
    if any(n.startswith("--") for n in names):
        print(f"greet: unknown option {next(n for n in names if n.startswith('--'))}", file=sys.stderr)
        return 2
    if names == ["-"]:
        names = [line.strip() for line in sys.stdin if line.strip()]
    for name in names or ["world"]:
        print(greeting(name, shout))
    return 0
