"""gRPC credentials from files: the server's (with optional client-certificate checking) and
a client's (the CA to trust, an optional client certificate, an optional bearer token).

gRPC's TLS (BoringSSL) negotiates TLS 1.2 or 1.3 only; older versions are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import grpc


class TlsSetupError(Exception):
    """A certificate, key or token file is missing or unreadable; the message names it."""


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"{what} {path}: {exc.strerror or exc}") from None


def server_credentials(cert: Path, key: Path, client_ca: Optional[Path]) -> grpc.ServerCredentials:
    """With `client_ca`, every client must present a certificate that CA signed."""
    pair = (_read(key, "TLS private key"), _read(cert, "TLS certificate"))
    roots = _read(client_ca, "client CA") if client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=roots is not None)


@dataclass(frozen=True)
class ClientAuth:
    """How a client (an executor, `status`, a test) reaches a bridge."""

    ca: Optional[Path] = None
    cert: Optional[Path] = None
    key: Optional[Path] = None
    token_file: Optional[Path] = None

    def token(self) -> Optional[str]:
        if self.token_file is None:
            return None
        token = _read(self.token_file, "token file").decode().strip()
        if not token:
            raise TlsSetupError(f"token file {self.token_file} is empty")
        return token


def split_address(address: str) -> Tuple[str, bool]:
    """(host:port, tls) from grpc://HOST:PORT, grpcs://HOST:PORT or HOST:PORT."""
    if address.startswith("grpcs://"):
        return address[len("grpcs://"):], True
    if address.startswith("grpc://"):
        return address[len("grpc://"):], False
    return address, False


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                         grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token to every call's metadata. Used instead of call credentials on TLS too:
    gRPC Python runs a metadata plugin on a new thread for every call, which cost a
    single-blob upload about 150 us of client CPU (benchmarks/run-security-benchmark); the
    header is the same and goes only where this one channel goes."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details):
        metadata = list(details.metadata or ()) + [self._header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base, metadata) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def open_channel(address: str, auth: ClientAuth = ClientAuth(), options=()) -> grpc.Channel:
    """A channel to `address`; grpcs:// (or a CA or client certificate given) means TLS. A
    token is sent on every call, over TLS or plain text as the address says."""
    target, tls = split_address(address)
    tls = tls or auth.ca is not None or auth.cert is not None
    token = auth.token()
    if not tls:
        channel = grpc.insecure_channel(target, options=list(options))
        return grpc.intercept_channel(channel, _BearerInterceptor(token)) if token else channel
    if (auth.cert is None) != (auth.key is None):
        raise TlsSetupError("a client certificate needs both --tls-client-cert and --tls-client-key")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(auth.ca, "CA certificate") if auth.ca else None,
        private_key=_read(auth.key, "client key") if auth.key else None,
        certificate_chain=_read(auth.cert, "client certificate") if auth.cert else None,
    )
    channel = grpc.secure_channel(target, creds, options=list(options))
    return grpc.intercept_channel(channel, _BearerInterceptor(token)) if token else channel
