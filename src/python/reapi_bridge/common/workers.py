"""Which actions are for a persistent worker, and the key of the worker that may serve them.

A client marks an action for a persistent worker the way Bazel does remotely:

- its argv ends with `@FLAGFILE` (an input file whose lines become each request's arguments:
  a line `@OTHER` is replaced by OTHER's lines, a line starting `@@` is passed on unchanged
  for the worker to unescape, as Bazel does);
  everything before it is the worker's start-up command (the worker is started with
  `--persistent_worker` added);
- its platform holds `persistentWorkerKey` (the key, when the client computed one) and/or
  `persistentWorkerProtocol` (`proto` or `json`); here also `persistentWorkerMultiplex=true`
  for a worker that serves several requests at once. Every property whose name starts with
  `persistentWorker` is a hint for the executor: none takes part in matching an action to an
  executor;
- files the worker itself needs (its program, its libraries) carry the node property
  `bazel_tool_input`.

An action without a worker property runs one-shot even when its argv ends with `@file`:
compilers read response files that way, and they do not speak the protocol.

Where no key is given (Pants sends none: it can only set an environment's platform properties),
the key is derived from the start-up command, the environment, the working directory, the
protocol and the digests of the tool inputs: the files marked `bazel_tool_input`, else the
files of the input root that start-up arguments name (the program, an interpreter's script),
so a changed tool never reuses a worker of the old one. The bridge (for its scheduler's preference) and the
executor (for its pool) derive it with this one function, from the same Command and tree.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from reapi_bridge.common.errors import InvalidArgument


PROPERTY_PREFIX = "persistentWorker"
KEY_PROPERTY = "persistentWorkerKey"
PROTOCOL_PROPERTY = "persistentWorkerProtocol"
MULTIPLEX_PROPERTY = "persistentWorkerMultiplex"
TOOL_INPUT_PROPERTY = "bazel_tool_input"
PROTOCOLS = ("proto", "json")
WORKER_FLAG = "--persistent_worker"
# Remote Workers API Worker.configs an executor reports: a key it holds a ready worker for (one
# config per key), and one JSON row per worker for `status`.
WARM_KEY_CONFIG = "persistentWorkerKey"
WORKER_ROW_CONFIG = "persistentWorker"

# (path relative to the input root, sha256 hash) of each tool input, sorted by path.
ToolInputs = Tuple[Tuple[str, str], ...]


def is_worker_property(name: str) -> bool:
    return name.startswith(PROPERTY_PREFIX)


def platform_properties(action, command) -> Dict[str, str]:
    """Action.platform, falling back to Command.platform (which is all Pants sets)."""
    props = action.platform.properties or command.platform.properties
    return {p.name: p.value for p in props}


def matching_properties(props: Mapping[str, str]) -> Dict[str, str]:
    """The properties an executor must offer: all but the worker hints."""
    return {k: v for k, v in props.items() if not is_worker_property(k)}


@dataclass(frozen=True)
class WorkerSpec:
    """How to start and address the worker for one action."""

    key: str  # given by the client, or derived (64 hex characters)
    key_given: bool
    protocol: str  # "proto" or "json"
    multiplex: bool
    startup_args: Tuple[str, ...]  # the action's argv without its @FLAGFILE (may hold {chroot})
    flagfile: str  # relative to the working directory
    environment: Tuple[Tuple[str, str], ...]
    working_directory: str

    @property
    def short_key(self) -> str:
        return self.key[:12]


def flagfile_of(arguments: Sequence[str]) -> Optional[str]:
    """The FLAGFILE of a trailing `@FLAGFILE` argument (`@@` is a literal @, not a flag file)."""
    if len(arguments) < 2:
        return None
    last = arguments[-1]
    if not last.startswith("@") or last.startswith("@@") or len(last) == 1:
        return None
    return last[1:]


def is_worker_action(command, props: Mapping[str, str]) -> bool:
    return any(is_worker_property(k) for k in props) and flagfile_of(command.arguments) is not None


def worker_spec(
    command, props: Mapping[str, str], tool_inputs: Callable[[Sequence[str]], ToolInputs]
) -> Optional[WorkerSpec]:
    """The worker for this action, or None when it runs one-shot. `tool_inputs(startup_args)`
    lists the tool inputs of the action's input root (see `tool_inputs_in`); it is called only
    when a key must be derived. A malformed hint is INVALID_ARGUMENT."""
    if not is_worker_action(command, props):
        return None
    protocol = props.get(PROTOCOL_PROPERTY, "proto")
    if protocol not in PROTOCOLS:
        raise InvalidArgument(
            f"platform property {PROTOCOL_PROPERTY}={protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    multiplex_value = props.get(MULTIPLEX_PROPERTY, "false").lower()
    if multiplex_value not in ("true", "false"):
        raise InvalidArgument(f"platform property {MULTIPLEX_PROPERTY}={multiplex_value!r} is not true or false")
    arguments = list(command.arguments)
    startup = tuple(arguments[:-1])
    environment = tuple(sorted((v.name, v.value) for v in command.environment_variables))
    given = props.get(KEY_PROPERTY, "")
    multiplex = multiplex_value == "true"
    key = given or derive_key(
        startup, environment, command.working_directory, protocol, multiplex, tool_inputs(startup)
    )
    return WorkerSpec(
        key=key,
        key_given=bool(given),
        protocol=protocol,
        multiplex=multiplex,
        startup_args=startup,
        flagfile=flagfile_of(arguments) or "",
        environment=environment,
        working_directory=command.working_directory,
    )


def derive_key(
    startup: Sequence[str],
    environment: Sequence[Tuple[str, str]],
    working_directory: str,
    protocol: str,
    multiplex: bool,
    tools: ToolInputs,
) -> str:
    document = json.dumps(
        {
            "startup": list(startup),
            "environment": [list(pair) for pair in environment],
            "working_directory": working_directory,
            "protocol": protocol,
            "multiplex": multiplex,
            "tools": [list(t) for t in tools],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(document.encode()).hexdigest()


def tool_inputs_in(files: Iterable[Tuple[str, object]], startup: Sequence[str], working_directory: str) -> ToolInputs:
    """The files marked `bazel_tool_input`; when none is, the input root's files that a
    start-up argument names (relative to the working directory, or `{chroot}/PATH`)."""
    listed = list(files)
    marked = [
        (path, f.digest.hash)
        for path, f in listed
        if any(p.name == TOOL_INPUT_PROPERTY for p in f.node_properties.properties)
    ]
    if marked:
        return tuple(sorted(marked))
    named = set()
    for arg in startup:
        if arg.startswith("{chroot}/"):
            named.add(posixpath.normpath(arg[len("{chroot}/"):]))
        elif arg and not arg.startswith(("/", "-")) and "{chroot}" not in arg:
            named.add(posixpath.normpath(posixpath.join(working_directory or ".", arg)))
    return tuple(sorted((path, f.digest.hash) for path, f in listed if path in named))
