"""The bridge's security pieces, built once from its configuration: who may call
(Authorizer), which cached results may be served (ResultVerifier), per-client limits, the
audit log and the server's TLS credentials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc

from reapi_bridge.auth.audit import AuditLog
from reapi_bridge.auth.authorizer import Authorizer
from reapi_bridge.auth.limits import ClientLimits
from reapi_bridge.auth.signing import ResultVerifier, TrustedKey, parse_public_key
from reapi_bridge.auth.tls import server_credentials
from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.common.permissions import Grant, parse_permissions
from reapi_bridge.config import BridgeConfig


@dataclass
class Security:
    authorizer: Authorizer
    verifier: ResultVerifier
    limits: Optional[ClientLimits]
    audit: AuditLog
    credentials: Optional[grpc.ServerCredentials]

    @classmethod
    def from_config(cls, config: BridgeConfig, state_dir: Path) -> "Security":
        auth = config.auth

        def at_state(value: str) -> Optional[Path]:
            return (state_dir / value) if value else None

        audit = AuditLog(at_state(auth.audit_log) if auth.enabled or config.executor_keys else None)
        identities = {
            i.name: Grant(parse_permissions(i.permissions, f"[[identities]] {i.name}"), i.instances)
            for i in config.identities
        }
        authorizer = Authorizer(
            enabled=auth.enabled,
            tokens=TokenStore(at_state(auth.tokens_file)) if auth.tokens_file else None,
            identities=identities,
            anonymous=Grant(parse_permissions(auth.anonymous_permissions, "[auth].anonymous_permissions")),
            audit=audit,
        )
        verifier = ResultVerifier(
            (
                TrustedKey(k.id, parse_public_key(k.public_key, k.id), k.executor, k.revoked)
                for k in config.executor_keys
            ),
            required=auth.require_signed_results,
        )
        limits = None
        if auth.enabled and (auth.max_streams_per_client or auth.max_bytes_in_flight_per_client):
            limits = ClientLimits(auth.max_streams_per_client, auth.max_bytes_in_flight_per_client)
        tls = config.tls
        credentials = None
        if tls.cert_chain:
            credentials = server_credentials(
                Path(tls.cert_chain), Path(tls.private_key),
                Path(tls.client_ca) if tls.client_ca else None,
            )
        return cls(authorizer, verifier, limits, audit, credentials)
