"""third_party/*.lock are requirements-format lockfiles (written by third_party/regenerate-lockfiles):
Pants' metadata header, then `NAME==VERSION` entries each with one `--hash=sha256:` per artifact,
and no URL. Pants does not compare such a user lockfile with the requirements it was made from,
so the bridge's is checked against bridge-requirements.txt here."""

import json
import re
from pathlib import Path

import pytest

THIRD_PARTY = Path("third_party")
LOCKFILES = sorted(THIRD_PARTY.glob("*.lock"))
BEGIN = "# --- BEGIN PANTS LOCKFILE METADATA: DO NOT EDIT OR REMOVE ---"
END = "# --- END PANTS LOCKFILE METADATA ---"
ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?: \\\n    --hash=sha256:[0-9a-f]{64})+)")


def parse(path: Path):
    """(metadata, {name: (version, hashes)}) of a requirements-format lockfile."""
    text = path.read_text()
    header, _, body = text.partition(END + "\n")
    assert body, f"{path} has no Pants metadata header"
    metadata = json.loads(header.partition(BEGIN + "\n")[2].replace("\n# ", "\n").removeprefix("# "))
    entries = {}
    position = 0
    for match in ENTRY.finditer(body):
        assert body[position : match.start()].strip() == "", f"{path}: unexpected text {body[position:match.start()]!r}"
        position = match.end()
        entries[match.group(1)] = (match.group(2), re.findall(r"[0-9a-f]{64}", match.group(3)))
    assert body[position:].strip() == "", f"{path}: unexpected text {body[position:]!r}"
    return metadata, entries


def test_there_are_lockfiles():
    assert {p.name for p in LOCKFILES} >= {"bridge.lock", "pants-plugins.lock"}


@pytest.mark.parametrize("path", LOCKFILES, ids=lambda p: p.name)
def test_a_lockfile_is_hash_pinned_and_names_no_url(path):
    text = path.read_text()
    assert "://" not in text
    first = next(line for line in text.splitlines() if line and not line.startswith("#"))
    assert not first.startswith("{"), "a Pex JSON lockfile: run third_party/regenerate-lockfiles"
    metadata, entries = parse(path)
    assert metadata["version"] == 3 and metadata["valid_for_interpreter_constraints"]
    assert entries and all(hashes for _, hashes in entries.values())


def test_the_bridge_lock_was_generated_from_bridge_requirements():
    pins = {}
    for line in (THIRD_PARTY / "bridge-requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    metadata, entries = parse(THIRD_PARTY / "bridge.lock")
    generated_with = dict(r.lower().split("==") for r in metadata["generated_with_requirements"])
    assert generated_with == pins, "bridge-requirements.txt changed: run third_party/regenerate-lockfiles --resolve=bridge"
    locked = {name.lower(): version for name, (version, _) in entries.items()}
    assert {name: locked.get(name) for name in pins} == pins
