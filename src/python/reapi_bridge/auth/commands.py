"""The security commands of `reapi-bridge`: `certs`, `token create|revoke|list`,
`signing-key create`, and the flags every client command (executor, status) shares to reach a
bridge that has TLS and authentication on."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional

from reapi_bridge.auth.tls import ClientAuth
from reapi_bridge.common.permissions import ALL_INSTANCES, PERMISSIONS, ROLES


def add_client_auth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-ca", type=Path, metavar="PEM",
                   help="CA certificate to check the bridge's certificate against (implies TLS; a "
                   "grpcs:// address also means TLS, checked against the system's CAs without this)")
    p.add_argument("--tls-client-cert", type=Path, metavar="PEM",
                   help="client certificate for mTLS (its common name is the identity); needs --tls-client-key")
    p.add_argument("--tls-client-key", type=Path, metavar="PEM", help="private key of --tls-client-cert")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help="file holding a bearer token (`reapi-bridge token create --out FILE`), sent as "
                   "`authorization: Bearer TOKEN`")


def client_auth_from(args) -> ClientAuth:
    return ClientAuth(args.tls_ca, args.tls_client_cert, args.tls_client_key, args.token_file)


def add_security_commands(sub, add_state_args) -> None:
    certs = sub.add_parser(
        "certs",
        help="make a CA, a server certificate and client certificates for TLS and mTLS",
        description="Write to DIR (keys readable by their owner only): ca.pem and ca-key.pem (made "
        "once, reused later), server.pem and server-key.pem for the given --host names and "
        "addresses, and NAME.pem / NAME-key.pem per --client. Point [tls].cert_chain and "
        "private_key at the server files, [tls].client_ca at ca.pem for mTLS, and clients at ca.pem "
        "(Pants: [GLOBAL].remote_ca_certs_path; Bazel: --tls_certificate).",
    )
    certs.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the files")
    certs.add_argument("--host", action="append", default=[], metavar="NAME_OR_IP",
                       help="a name or IP address clients use to reach the bridge (repeatable; default: "
                       "localhost and 127.0.0.1)")
    certs.add_argument("--client", action="append", default=[], metavar="NAME",
                       help="issue a client certificate with this common name (repeatable); give it "
                       "permissions in an [[identities]] table of the bridge config")
    certs.add_argument("--days", type=int, default=825, help="validity in days (default: 825)")

    token = sub.add_parser(
        "token",
        help="create, revoke and list bearer tokens",
        description="Manage the bearer tokens of a bridge with [auth].enabled. They live hashed in "
        "[auth].tokens_file under the state dir; a running bridge notices changes at once.",
    )
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser(
        "create",
        help="create a token and print it (it is shown only once)",
        description=f"Permissions: {', '.join(PERMISSIONS)}. Roles (shorthands): "
        + "; ".join(f"{r} = {', '.join(p)}" for r, p in ROLES.items()) + ".",
    )
    add_state_args(create)
    create.add_argument("--name", required=True, help="who or what holds it (for listings and the audit log)")
    create.add_argument("--permissions", required=True, metavar="LIST",
                        help="comma-separated permissions and/or roles, e.g. `ci` or `read,cas-write`")
    create.add_argument("--instance", action="append", default=[], metavar="SCOPE",
                        help="instance scope, matched per path component (`ci` covers `ci/arm64`); "
                        "repeatable; default `*` (every instance)")
    create.add_argument("--out", type=Path, metavar="FILE",
                        help="write the token to FILE (mode 0600) instead of printing it; that file is "
                        "what Pants' [GLOBAL].remote_oauth_bearer_token_path names")
    revoke = tsub.add_parser("revoke", help="revoke every live token with this name or id")
    add_state_args(revoke)
    revoke.add_argument("name", metavar="NAME_OR_ID")
    listing = tsub.add_parser("list", help="list tokens: id, name, permissions, scopes, created, revoked")
    add_state_args(listing)

    key = sub.add_parser(
        "signing-key",
        help="create an executor's Ed25519 key for signing results",
        description="Write a new Ed25519 private key (mode 0600) for `executor --signing-key`, and print "
        "the [[executor_keys]] table that makes a bridge trust it.",
    )
    ksub = key.add_subparsers(dest="key_command", metavar="ACTION")
    ksub.required = True
    kcreate = ksub.add_parser("create", help="create a key")
    kcreate.add_argument("--out", type=Path, required=True, metavar="FILE", help="private key file to write")
    kcreate.add_argument("--executor", default="", help="which executor will hold it (for messages)")


def _token_store(args):
    from reapi_bridge.auth.tokens import TokenStore
    from reapi_bridge.config import load_config

    config = load_config(args.config).with_overrides(state_dir=args.state_dir)
    if not config.auth.tokens_file:
        raise SystemExit("reapi-bridge token: [auth].tokens_file is empty in this configuration")
    return TokenStore(config.server.state_dir / config.auth.tokens_file), config


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def run_security_command(args) -> Optional[int]:
    """Runs `certs`, `token` or `signing-key`; None for any other command."""
    if args.command == "certs":
        from reapi_bridge.auth.certs import issue

        try:
            files = issue(args.out, args.host or ["localhost", "127.0.0.1"], args.client, args.days)
        except ValueError as exc:
            print(f"reapi-bridge certs: {exc}", file=sys.stderr)
            return 2
        print(f"CA:     {files.ca}\nserver: {files.server_cert} (key {files.server_key})")
        for name, cert, key in files.clients:
            print(f"client {name}: {cert} (key {key})")
        return 0
    if args.command == "token":
        from reapi_bridge.auth.tokens import TokenError

        store, _ = _token_store(args)
        try:
            if args.token_command == "create":
                token, record = store.create(
                    args.name, args.permissions.split(","), tuple(args.instance) or (ALL_INSTANCES,)
                )
                if args.out:
                    write_secret(args.out, token)
                    print(f"token {record.name!r} ({record.id}) written to {args.out}", file=sys.stderr)
                else:
                    print(token)
                print(f"permissions: {', '.join(record.permissions)}; instances: {', '.join(record.instances)}",
                      file=sys.stderr)
                return 0
            if args.token_command == "revoke":
                for record in store.revoke(args.name):
                    print(f"revoked {record.name!r} ({record.id})")
                return 0
            for r in store.records():
                revoked = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.revoked)) if r.revoked else "-"
                print(f"{r.id}  {r.name:<24} {','.join(r.permissions):<32} {','.join(r.instances):<12} "
                      f"created {time.strftime('%Y-%m-%d %H:%M', time.localtime(r.created))}  revoked {revoked}")
            return 0
        except TokenError as exc:
            print(f"reapi-bridge token: {exc}", file=sys.stderr)
            return 2
    if args.command == "signing-key":
        from reapi_bridge.auth.signing import SigningKey, public_key_text

        key = SigningKey.generate()
        key.save(args.out)
        print(executor_key_table(key.key_id, public_key_text(key.public), args.executor))
        return 0
    return None


def executor_key_table(key_id: str, public: str, executor: str) -> str:
    return f'[[executor_keys]]\nid = "{key_id}"\npublic_key = "{public}"\nexecutor = "{executor}"\nrevoked = false\n'
