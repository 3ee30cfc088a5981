"""What a caller may do, and where: permissions scoped by REAPI instance name.

A grant names permissions and the instances they hold on. An instance scope matches per path
component: `ci` covers `ci` and `ci/arm64`, never `cil`; `*` covers every instance; the empty
scope covers only the empty instance name (Pants' and Bazel's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Iterable, Tuple

READ = "read"  # CAS and ByteStream reads, FindMissingBlobs, GetTree, GetActionResult
CAS_WRITE = "cas-write"  # BatchUpdateBlobs, ByteStream Write and QueryWriteStatus
AC_WRITE = "ac-write"  # UpdateActionResult: a client's own result enters the action cache
EXECUTE = "execute"  # Execute, WaitExecution and the Operations service
WORKER = "worker"  # the Bots service: take leases and report their results
ADMIN = "admin"  # everything above, plus the status service

PERMISSIONS: Tuple[str, ...] = (READ, CAS_WRITE, AC_WRITE, EXECUTE, WORKER, ADMIN)

# Shorthands for `token create --role`: what each kind of caller needs.
ROLES = {
    "reader": (READ,),
    "developer": (READ, CAS_WRITE, EXECUTE),
    "ci": (READ, CAS_WRITE, EXECUTE),
    "executor": (READ, CAS_WRITE, WORKER),
    "admin": (ADMIN,),
}

ALL_INSTANCES = "*"


def parse_permissions(values: Iterable[str], where: str) -> FrozenSet[str]:
    """Permission names (or role names, expanded) checked against the vocabulary; the error
    names `where` and the known names."""
    out = set()
    for value in values:
        value = value.strip()
        if value in ROLES:
            out.update(ROLES[value])
        elif value in PERMISSIONS:
            out.add(value)
        else:
            raise ValueError(
                f"{where}: unknown permission {value!r}; permissions: {', '.join(PERMISSIONS)}; "
                f"roles: {', '.join(ROLES)}"
            )
    return frozenset(out)


def scope_covers(scope: str, instance: str) -> bool:
    if scope == ALL_INSTANCES or scope == instance:
        return True
    return scope != "" and instance.startswith(scope + "/")


@dataclass(frozen=True)
class Grant:
    permissions: FrozenSet[str]
    instances: Tuple[str, ...] = (ALL_INSTANCES,)

    def allows(self, permission: str, instance: str) -> bool:
        if permission not in self.permissions and ADMIN not in self.permissions:
            return False
        return any(scope_covers(scope, instance) for scope in self.instances)

    def allows_any(self, instance: str) -> bool:
        return any(self.allows(p, instance) for p in PERMISSIONS)


EVERYTHING = Grant(frozenset({ADMIN}))
NOTHING = Grant(frozenset(), ())


@dataclass(frozen=True)
class Caller:
    """Who is calling: `name` for messages and the audit log, `kind` how they proved it
    (`token`, `certificate`, `anonymous`, or `open` where authentication is off)."""

    name: str
    kind: str
    grant: Grant

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    def describe(self) -> str:
        return self.name if self.kind in ("anonymous", "open") else f"{self.kind} {self.name!r}"
