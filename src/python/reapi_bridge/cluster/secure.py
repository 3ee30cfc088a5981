"""`up --secure`: the embedded cluster as a shared bridge would run, on this machine.

Under STATE_DIR/secure (made once, reused by every later start):
- tls/: a CA and a server certificate for localhost, 127.0.0.1 and the listen host;
- tokens (in the bridge's tokens file): one per executor (role executor) and `developer.token`
  (read, cas-write, execute: no ac-write, so only executors' results enter the cache), plus
  `admin.token` for `status`;
- one Ed25519 signing key per executor, trusted by the bridge config;
- bridge.toml: the user's --config (if any) with TLS and authentication on and signed results
  required.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import toml

from reapi_bridge.auth.certs import issue
from reapi_bridge.auth.commands import write_secret
from reapi_bridge.auth.signing import SigningKey, public_key_text
from reapi_bridge.auth.tls import ClientAuth
from reapi_bridge.auth.tokens import TokenStore

TOKENS_FILE = "tokens.json"


@dataclass(frozen=True)
class SecureFiles:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def config(self) -> Path:
        return self.root / "bridge.toml"

    @property
    def developer_token(self) -> Path:
        return self.root / "developer.token"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    def executor_token(self, isa: str) -> Path:
        return self.root / f"executor-{isa}.token"

    def signing_key(self, isa: str) -> Path:
        return self.root / f"executor-{isa}.key"

    def exists(self) -> bool:
        return self.config.exists()

    def admin(self) -> ClientAuth:
        return ClientAuth(ca=self.ca, token_file=self.admin_token)

    def executor(self, isa: str) -> ClientAuth:
        return ClientAuth(ca=self.ca, token_file=self.executor_token(isa))


def prepare(state_dir: Path, bridge_dir: Path, listen: str, user_config: Optional[Path], isas: Sequence[str]) -> SecureFiles:
    files = SecureFiles(state_dir / "secure")
    files.root.mkdir(parents=True, exist_ok=True)
    host = listen.rpartition(":")[0] or "127.0.0.1"
    hosts = ["localhost", "127.0.0.1"] + ([host] if host not in ("localhost", "127.0.0.1", "0.0.0.0", "") else [])
    tls = files.root / "tls"
    if not (tls / "server.pem").exists():
        issue(tls, hosts)
    store = TokenStore(bridge_dir / TOKENS_FILE)
    live = {r.name for r in store.records() if r.revoked is None}

    def token(name: str, permissions: Sequence[str], path: Path) -> None:
        if name in live and path.exists():
            return
        if name in live:
            store.revoke(name)
        secret, _ = store.create(name, permissions)
        write_secret(path, secret)

    token("developer", ["developer"], files.developer_token)
    token("local-admin", ["admin"], files.admin_token)
    keys: Dict[str, SigningKey] = {}
    for isa in isas:
        token(f"executor-{isa}", ["executor"], files.executor_token(isa))
        path = files.signing_key(isa)
        if not path.exists():
            SigningKey.generate().save(path)
        keys[isa] = SigningKey.load(path)
    data = toml.load(str(user_config)) if user_config else {}
    data.setdefault("tls", {}).update(
        cert_chain=str(tls / "server.pem"), private_key=str(tls / "server-key.pem")
    )
    data.setdefault("auth", {}).update(enabled=True, tokens_file=TOKENS_FILE, require_signed_results=True)
    data["executor_keys"] = [
        {"id": k.key_id, "public_key": public_key_text(k.public), "executor": f"local-{isa}", "revoked": False}
        for isa, k in keys.items()
    ] + [k for k in data.get("executor_keys", []) if not k.get("executor", "").startswith("local-")]
    files.config.write_text(toml.dumps(data))
    return files
