"""Who is calling and whether they may: the one check every service method makes first.

Credentials, in order: a bearer token (`authorization: Bearer TOKEN`, what Pants sends from
`remote_oauth_bearer_token_path` and Bazel from `--remote_header`), then a verified TLS client
certificate whose common name is a configured identity. A call with neither is anonymous and
holds `[auth].anonymous_permissions`. A bad token is refused even where anonymous callers
would pass: a caller who meant to be someone should learn that they are not.

Refusals are UNAUTHENTICATED (no or bad credential) or PERMISSION_DENIED (a known caller
without the permission), each naming the permission and instance, and each goes to the audit
log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from reapi_bridge.auth.audit import AuditLog
from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.common.errors import PermissionDenied, Unauthenticated
from reapi_bridge.common.permissions import ADMIN, EVERYTHING, NOTHING, Caller, Grant

OPEN = Caller("local user (authentication off)", "open", EVERYTHING)


@dataclass(frozen=True)
class Credentials:
    """What one call presented, taken from its gRPC context."""

    bearer: Optional[str]  # None: no authorization header; "" : a header that is not Bearer
    certificate_name: Optional[str]
    peer: str
    method: str


def bearer_of(context) -> Optional[str]:
    """The call's bearer token; None without an authorization header, "" for one that is not
    `Bearer TOKEN`."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def certificate_name_of(context) -> Optional[str]:
    """The common name of the call's verified client certificate, if it presented one."""
    names = (context.auth_context() or {}).get("x509_common_name") or ()
    if not names:
        return None
    return names[0].decode() if isinstance(names[0], bytes) else str(names[0])


def credentials_of(context) -> Credentials:
    bearer, name = bearer_of(context), certificate_name_of(context)
    method = ""
    try:
        method = context._rpc_event.call_details.method.decode()  # noqa: SLF001 - for messages only
    except Exception:
        pass
    return Credentials(bearer, name, context.peer(), method)


class Authorizer:
    """`enabled=False` lets every call through as the local user (a bridge on loopback for
    its own user); otherwise tokens and certificate identities decide."""

    def __init__(
        self,
        *,
        enabled: bool,
        tokens: Optional[TokenStore] = None,
        identities: Mapping[str, Grant] = None,
        anonymous: Grant = NOTHING,
        audit: Optional[AuditLog] = None,
    ) -> None:
        self.enabled = enabled
        self.tokens = tokens
        self.identities = dict(identities or {})
        self.anonymous = anonymous
        self.audit = audit or AuditLog(None)

    def authenticate(self, creds: Credentials) -> Caller:
        if not self.enabled:
            return OPEN
        if creds.bearer is not None:
            record, why = (None, "the authorization header is not `Bearer TOKEN`") if not creds.bearer else (
                self.tokens.check(creds.bearer) if self.tokens is not None else (None, "no tokens are configured")
            )
            if record is None:
                self._refuse(creds, None, "", "", why)
                raise Unauthenticated(f"{why}; the call was refused")
            return Caller(record.name, "token", record.grant)
        if creds.certificate_name is not None:
            grant = self.identities.get(creds.certificate_name)
            if grant is not None:
                return Caller(creds.certificate_name, "certificate", grant)
            return Caller(creds.certificate_name, "certificate", NOTHING)
        return Caller("anonymous", "anonymous", self.anonymous)

    def require(self, context, permission: str, instance: str) -> Caller:
        return self._require(context, (permission,), (instance,))

    def require_any(self, context, permissions: Sequence[str], instance: str) -> Caller:
        return self._require(context, permissions, (instance,))

    def require_everywhere(self, context, permission: str, instances: Iterable[str]) -> Caller:
        return self._require(context, (permission,), instances)

    def _require(self, context, permissions: Sequence[str], instances: Iterable[str]) -> Caller:
        """The caller, once it holds one of `permissions` on each of `instances`."""
        if not self.enabled:
            return OPEN
        creds = credentials_of(context)
        caller = self.authenticate(creds)
        for instance in instances:
            if not any(caller.grant.allows(p, instance) for p in permissions):
                self._deny(creds, caller, " or ".join(permissions), instance)
        return caller

    def require_somewhere(self, context, permission: str) -> Caller:
        """For calls that name no instance yet (an unknown operation): the caller must hold
        `permission` on some instance."""
        if not self.enabled:
            return OPEN
        creds = credentials_of(context)
        caller = self.authenticate(creds)
        if permission not in caller.grant.permissions and ADMIN not in caller.grant.permissions or not caller.grant.instances:
            self._deny(creds, caller, permission, "any")
        return caller

    def check_read_everywhere(self, token: Optional[str], instances: Iterable[str]) -> Optional[str]:
        """For the HTTP port: None if `token` (or no token) may read every instance, else why not."""
        if not self.enabled:
            return None
        creds = Credentials(token, None, "http", "GET")
        try:
            caller = self.authenticate(creds)
            for instance in instances:
                if not caller.grant.allows("read", instance):
                    self._deny(creds, caller, "read", instance)
        except (Unauthenticated, PermissionDenied) as exc:
            return str(exc)
        return None

    def refuse_other(self, context, caller: Caller, what: str):
        """`caller` may do this kind of thing, but `what` belongs to someone else."""
        creds = credentials_of(context)
        why = f"{what} belongs to another identity than {caller.describe()}"
        self._refuse(creds, caller, "", "", why)
        raise PermissionDenied(why)

    def caller(self, context) -> Caller:
        if not self.enabled:
            return OPEN
        return self.authenticate(credentials_of(context))

    def _deny(self, creds: Credentials, caller: Caller, permission: str, instance: str):
        if caller.anonymous:
            why = f"this call needs the {permission!r} permission on instance {instance!r}; anonymous callers do not have it (send a bearer token or a client certificate)"
            self._refuse(creds, caller, permission, instance, why)
            raise Unauthenticated(why)
        why = f"{caller.describe()} lacks the {permission!r} permission on instance {instance!r}"
        self._refuse(creds, caller, permission, instance, why)
        raise PermissionDenied(why)

    def _refuse(self, creds: Credentials, caller: Optional[Caller], permission: str, instance: str, why: str) -> None:
        self.audit.record(
            "refused",
            caller=caller.name if caller else None,
            kind=caller.kind if caller else None,
            method=creds.method,
            peer=creds.peer,
            permission=permission,
            instance=instance,
            reason=why,
        )
