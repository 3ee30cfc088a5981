"""`reapi-bridge certs`: a private CA, a server certificate for given host names and IP
addresses, and client certificates for given identities, made with `cryptography`.

Files written to the output directory (keys 0600): ca.pem, ca-key.pem, server.pem,
server-key.pem, and NAME.pem / NAME-key.pem per client identity. The CA key stays next to
them so more client certificates can be issued later (`--client NAME` again with the same
directory reuses the CA).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class IssuedFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: Tuple[Tuple[str, Path, Path], ...]


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crossbuild"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _load_or_make_ca(out: Path, days: int):
    cert_path, key_path = out / "ca.pem", out / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("crossbuild reapi-bridge CA"))
        .issuer_name(_name("crossbuild reapi-bridge CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert, key


def _issue(ca_cert, ca_key, common_name: str, sans: List[x509.GeneralName], usage, days: int):
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def host_names(hosts: Sequence[str]) -> List[x509.GeneralName]:
    out: List[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def issue(out: Path, hosts: Sequence[str], clients: Sequence[str] = (), days: int = 825) -> IssuedFiles:
    """Makes (or reuses) the CA in `out`, a server certificate for `hosts` (names or IP
    addresses), and one client certificate per name in `clients`."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address (--host)")
    ca_cert, ca_key = _load_or_make_ca(out, days)
    cert, key = _issue(ca_cert, ca_key, hosts[0], host_names(hosts), ExtendedKeyUsageOID.SERVER_AUTH, days)
    _write(out / "server-key.pem", _key_pem(key), private=True)
    _write(out / "server.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    issued = []
    for name in clients:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"client identity {name!r} must be a plain name (it becomes a file name)")
        cert, key = _issue(ca_cert, ca_key, name, [], ExtendedKeyUsageOID.CLIENT_AUTH, days)
        _write(out / f"{name}-key.pem", _key_pem(key), private=True)
        _write(out / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
        issued.append((name, out / f"{name}.pem", out / f"{name}-key.pem"))
    return IssuedFiles(out / "ca.pem", out / "server.pem", out / "server-key.pem", tuple(issued))
