"""Tokens as stored and checked: hashed at rest, owner-only file, revocation seen without a
restart, clear refusals for bad input."""

from __future__ import annotations

import stat

import pytest

from reapi_bridge.auth.tokens import TokenError, TokenStore


def test_tokens_are_stored_hashed_and_revocation_is_seen_by_a_running_reader(tmp_path):
    path = tmp_path / "tokens.json"
    writer, reader = TokenStore(path), TokenStore(path)  # the CLI and a running bridge
    token, record = writer.create("ci-42", ["ci"], ["ci"])
    assert token not in path.read_text() and record.sha256 in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found, why = reader.check(token)
    assert found is not None and found.name == "ci-42" and why == ""
    assert found.grant.allows("execute", "ci/arm64") and not found.grant.allows("execute", "cil")
    assert not found.grant.allows("ac-write", "ci")
    writer.revoke("ci-42")
    found, why = reader.check(token)
    assert found is None and "revoked" in why
    assert reader.check(token[:-1] + ("A" if token[-1] != "A" else "B"))[1] == "the bearer token is unknown"
    assert reader.check("not-a-token")[1] == "the bearer token is malformed"


def test_bad_token_requests_are_refused_clearly(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    with pytest.raises(TokenError, match="unknown permission 'wrte'"):
        store.create("x", ["wrte"])
    with pytest.raises(TokenError, match="at least one permission"):
        store.create("x", [])
    store.create("x", ["read"])
    with pytest.raises(TokenError, match="live token named 'x' exists"):
        store.create("x", ["read"])
    with pytest.raises(TokenError, match="no live token"):
        store.revoke("nobody")
