"""The audit log: one JSON object per line for every refused call and every action-cache
write (who, what, where), appended and flushed as it happens."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Optional


class AuditLog:
    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def record(self, event: str, **fields) -> None:
        if self._fd is None:
            return
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields}, sort_keys=True) + "\n"
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line.encode())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_audit_log(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
