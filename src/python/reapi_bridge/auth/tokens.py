"""Bearer tokens: created and revoked from the command line, stored hashed in one JSON file.

A token reads `xb1.ID.SECRET`: ID (12 hex digits) finds the record, the SHA-256 of the whole
token is what the file keeps, compared in constant time. The secret is 32 random bytes, so a
plain hash is enough (nothing to brute-force). The bridge re-reads the file when it changes:
a revocation holds from the next call, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from reapi_bridge.common.permissions import ALL_INSTANCES, Grant, parse_permissions

PREFIX = "xb1"


class TokenError(Exception):
    """A token command's input is wrong (unknown name, bad permission); the message says which."""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    sha256: str
    permissions: Tuple[str, ...]
    instances: Tuple[str, ...]
    created: float
    revoked: Optional[float] = None

    @property
    def grant(self) -> Grant:
        return Grant(frozenset(self.permissions), self.instances)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _split(token: str) -> Optional[str]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple[int, int, int]] = None
        self._records: Dict[str, TokenRecord] = {}

    # -- reading ---------------------------------------------------------------------------
    def _load(self) -> Dict[str, TokenRecord]:
        """The records, re-read when the file's (inode, size, mtime) changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            data = json.loads(self.path.read_text() or "{}")
            records = {}
            for raw in data.get("tokens", []):
                raw["permissions"] = tuple(raw["permissions"])
                raw["instances"] = tuple(raw["instances"])
                records[raw["id"]] = TokenRecord(**raw)
            self._stamp, self._records = stamp, records
        return self._records

    def records(self) -> List[TokenRecord]:
        with self._lock:
            return sorted(self._load().values(), key=lambda r: r.created)

    def check(self, token: str) -> Tuple[Optional[TokenRecord], str]:
        """(record, "") for a live token, else (None, why not)."""
        token_id = _split(token)
        if token_id is None:
            return None, "the bearer token is malformed"
        with self._lock:
            record = self._load().get(token_id)
        if record is None or not hmac.compare_digest(record.sha256, _hash(token)):
            return None, "the bearer token is unknown"
        if record.revoked is not None:
            return None, f"token {record.name!r} ({record.id}) was revoked"
        return record, ""

    # -- writing (the CLI) -----------------------------------------------------------------
    def _save(self, records: Dict[str, TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = {"tokens": [asdict(r) for r in sorted(records.values(), key=lambda r: r.created)]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def create(self, name: str, permissions: Sequence[str], instances: Sequence[str] = (ALL_INSTANCES,)) -> Tuple[str, TokenRecord]:
        """A new token (returned once, never stored) and its record."""
        if not name or any(c.isspace() for c in name):
            raise TokenError(f"token name {name!r} must be non-empty without spaces")
        try:
            granted = parse_permissions(permissions, "--permissions")
        except ValueError as exc:
            raise TokenError(str(exc)) from None
        if not granted:
            raise TokenError("a token needs at least one permission or role (--permissions)")
        if not instances:
            raise TokenError("a token needs at least one instance scope (--instance; * for all)")
        with self._lock:
            records = dict(self._load())
            if any(r.name == name and r.revoked is None for r in records.values()):
                raise TokenError(f"a live token named {name!r} exists; revoke it first or pick another name")
            token_id = secrets.token_hex(6)
            token = f"{PREFIX}.{token_id}.{secrets.token_urlsafe(32)}"
            record = TokenRecord(
                id=token_id, name=name, sha256=_hash(token), permissions=tuple(sorted(granted)),
                instances=tuple(instances), created=time.time(),
            )
            records[token_id] = record
            self._save(records)
            self._stamp = None
        return token, record

    def revoke(self, name_or_id: str) -> List[TokenRecord]:
        with self._lock:
            records = dict(self._load())
            hits = [r for r in records.values() if r.revoked is None and name_or_id in (r.id, r.name)]
            if not hits:
                raise TokenError(f"no live token has the name or id {name_or_id!r} (see `reapi-bridge token list`)")
            now = time.time()
            for r in hits:
                records[r.id] = replace(r, revoked=now)
            self._save(records)
            self._stamp = None
            return [records[r.id] for r in hits]
