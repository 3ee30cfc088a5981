"""Headless Chromium (Debian's `chromium`) loading a page and handing back its DOM once the
page's scripts ran: for the status page's tests and benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> Optional[str]:
    override = os.environ.get("CROSSBUILD_CHROMIUM")
    if override:
        return override
    for name in CANDIDATES:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


def render(url: str, *, screenshot: Optional[Path] = None, budget_ms: int = 8000, size=(1400, 900)) -> str:
    """The DOM of `url` after `budget_ms` of (virtual) time; a PNG to `screenshot` if given."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no chromium on PATH: install Debian's `chromium` (.ci/install-deps does)")
    with tempfile.TemporaryDirectory(prefix="crossbuild-chromium-") as profile:
        base = [
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}",
        ]
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180)
        if dom.returncode != 0:
            raise RuntimeError(f"chromium exited {dom.returncode}: {dom.stderr[-2000:]}")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            shot = subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=180)
            if shot.returncode != 0 or not screenshot.exists():
                raise RuntimeError(f"chromium made no screenshot (exit {shot.returncode}): {shot.stderr[-2000:]}")
        return dom.stdout
