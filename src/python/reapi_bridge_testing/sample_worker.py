"""A small persistent worker for tests and benchmarks: standard library only, so any python3
runs it as an action's tool input. It speaks both framings of the worker protocol (its own
minimal protobuf coding, written from the field numbers), singleplex or multiplex.

Start-up flags (before the @FLAGFILE / --persistent_worker): `--protocol=proto|json`,
`--multiplex`, `--no-worker-mode` (a tool without worker support: refuses
--persistent_worker, runs one-shot), `--tag=TEXT` (only to make keys differ).

A request's arguments are a verb and its operands:
  echo WORD...       answers "pid=P count=N tag=T inputs=I args=WORD..." (N: requests this
                     process got; a WORD written @@x in the flag file arrives as @x)
  write PATH TEXT    writes TEXT to PATH (relative to the request's folder), then answers as echo
  read PATH          answers with PATH's content (to see which inputs a request got)
  fail CODE          answers with exit code CODE
  crash              exits 3 without answering
  garbage            writes a line that is not a response, then waits
  hang               never answers
  alloc MIB          keeps MIB MiB of memory touched, then answers
  sleep SECONDS      answers after SECONDS (multiplex: answers was_cancelled when cancelled)
Without --persistent_worker it runs the @FLAGFILE's request once (one-shot), writing the
answer to stderr.
"""

import json
import os
import sys
import threading
import time

COUNT = 0
HELD = []
CANCELLED = set()
LOCK = threading.Lock()


def varint(value):
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decode_request(data):
    request = {"arguments": [], "requestId": 0, "cancel": False, "sandboxDir": "", "inputs": []}
    pos = 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            size, pos = read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        if field == 1:
            request["arguments"].append(value.decode())
        elif field == 2:
            request["inputs"].append(value)
        elif field == 3:
            request["requestId"] = value
        elif field == 4:
            request["cancel"] = bool(value)
        elif field == 6:
            request["sandboxDir"] = value.decode()
    return request


def encode_response(exit_code, output, request_id, was_cancelled=False):
    out = bytearray()
    if exit_code:
        out += varint(1 << 3) + varint(exit_code)
    if output:
        data = output.encode()
        out += varint((2 << 3) | 2) + varint(len(data)) + data
    if request_id:
        out += varint(3 << 3) + varint(request_id)
    if was_cancelled:
        out += varint(4 << 3) + varint(1)
    return bytes(out)


class Channel:
    def __init__(self, protocol):
        self.protocol = protocol
        self.stdin = sys.stdin.buffer
        self.stdout = sys.stdout.buffer
        self.write_lock = threading.Lock()

    def read(self):
        if self.protocol == "json":
            line = self.stdin.readline()
            if not line:
                return None
            raw = json.loads(line)
            return {
                "arguments": raw.get("arguments", []),
                "requestId": raw.get("requestId", 0),
                "cancel": raw.get("cancel", False),
                "sandboxDir": raw.get("sandboxDir", ""),
                "inputs": raw.get("inputs", []),
            }
        size = bytearray()
        while True:
            b = self.stdin.read(1)
            if not b:
                return None
            size += b
            if not b[0] & 0x80:
                break
        length, _ = read_varint(bytes(size), 0)
        return decode_request(self.stdin.read(length))

    def write(self, exit_code, output, request_id, was_cancelled=False):
        if self.protocol == "json":
            message = {"exitCode": exit_code, "output": output, "requestId": request_id}
            if was_cancelled:
                message["wasCancelled"] = True
            data = (json.dumps(message) + "\n").encode()
        else:
            body = encode_response(exit_code, output, request_id, was_cancelled)
            data = varint(len(body)) + body
        with self.write_lock:
            self.stdout.write(data)
            self.stdout.flush()


def handle(request, tag, channel=None):
    """(exit code, output), or None when the request ended without an answer."""
    global COUNT
    with LOCK:
        COUNT += 1
        count = COUNT
    args = [a[1:] if a.startswith("@@") else a for a in request["arguments"]]  # the worker unescapes
    verb, rest = (args[0], args[1:]) if args else ("echo", [])
    base = request["sandboxDir"] or "."
    ident = f"pid={os.getpid()} count={count} tag={tag} inputs={len(request['inputs'])}"
    if verb == "echo":
        return 0, f"{ident} args={' '.join(rest)}\n"
    if verb == "write":
        with open(os.path.join(base, rest[0]), "w") as f:
            f.write(rest[1])
        return 0, f"{ident} wrote {rest[0]}\n"
    if verb == "read":
        try:
            with open(os.path.join(base, rest[0])) as f:
                return 0, f.read()
        except OSError as exc:
            return 1, f"{ident} cannot read {rest[0]}: {exc.strerror}\n"
    if verb == "fail":
        return int(rest[0]), f"{ident} failing with {rest[0]}\n"
    if verb == "crash":
        sys.stderr.write("sample worker: crashing as asked\n")
        sys.stderr.flush()
        os._exit(3)
    if verb == "garbage" and channel is not None:
        with channel.write_lock:
            channel.stdout.write(b"this is not a WorkResponse\n")
            channel.stdout.flush()
        time.sleep(3600)
    if verb == "hang":
        time.sleep(3600)
    if verb == "alloc":
        block = bytearray(int(rest[0]) << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        HELD.append(block)
        return 0, f"{ident} holds {sum(len(b) for b in HELD) >> 20} MiB\n"
    if verb == "sleep":
        deadline = time.monotonic() + float(rest[0])
        while time.monotonic() < deadline:
            with LOCK:
                if request["requestId"] in CANCELLED:
                    return None
            time.sleep(0.02)
        return 0, f"{ident} slept\n"
    return 2, f"unknown verb {verb!r}\n"


def serve(channel, tag, multiplex):
    while True:
        request = channel.read()
        if request is None:
            return 0
        if request["cancel"]:
            with LOCK:
                CANCELLED.add(request["requestId"])
            continue

        def run(request=request):
            answer = handle(request, tag, channel)
            if answer is None:
                channel.write(0, "", request["requestId"], was_cancelled=True)
            else:
                channel.write(answer[0], answer[1], request["requestId"])

        if multiplex:
            threading.Thread(target=run, daemon=True).start()
        else:
            run()


def main(argv):
    protocol, multiplex, tag, worker_mode = "proto", False, "", True
    rest = []
    for arg in argv:
        if arg.startswith("--protocol="):
            protocol = arg.split("=", 1)[1]
        elif arg == "--multiplex":
            multiplex = True
        elif arg == "--no-worker-mode":
            worker_mode = False
        elif arg.startswith("--tag="):
            tag = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if "--persistent_worker" in rest:
        if not worker_mode:
            sys.stderr.write("sample worker: unknown flag --persistent_worker\n")
            return 2
        return serve(Channel(protocol), tag, multiplex)
    flagfile = [a for a in rest if a.startswith("@")]
    if not flagfile:
        sys.stderr.write("usage: sample_worker.py [flags] (--persistent_worker | @FLAGFILE)\n")
        return 2
    with open(flagfile[-1][1:]) as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    answer = handle({"arguments": lines, "requestId": 0, "cancel": False, "sandboxDir": "", "inputs": []}, tag)
    code, output = answer
    sys.stderr.write(output.replace(f"pid={os.getpid()}", "pid=one-shot"))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
