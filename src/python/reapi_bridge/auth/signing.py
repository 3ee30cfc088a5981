"""Executor-signed action results.

An executor holds an Ed25519 key. For each result it signs a ResultEnvelope: the instance,
the action digest, the digest function, the SHA-256 of the result (deterministically
serialized, without the signature entry), its own name, the time and the key id. The
SignedResult rides in `execution_metadata.auxiliary_metadata`, which clients (Pants, Bazel)
pass over untouched.

The bridge checks it on every GetActionResult and every Execute cache hit. A result that is
unsigned where signatures are required, signed by an unknown or revoked key, tampered with, or
signed for another action or instance is not served (NOT_FOUND: the action runs again).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf import any_pb2, timestamp_pb2

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.crossbuild.bridge.v1 import signing_pb2

SIGNATURE_TYPE_URL = "type.googleapis.com/crossbuild.bridge.v1.SignedResult"


class SigningError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key; the message names it."""


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    """The form the bridge config holds: base64 of the 32 raw bytes."""
    return base64.b64encode(_raw_public(public)).decode()


def parse_public_key(text: str, where: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except Exception:
        raise ValueError(f"{where}: not a base64 Ed25519 public key (32 bytes)") from None


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> "SigningKey":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SigningError(f"signing key {path}: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except Exception as exc:
            raise SigningError(f"signing key {path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningError(f"signing key {path}: a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    def save(self, path: Path) -> None:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)


def _unsigned_sha256(result: re_pb2.ActionResult) -> bytes:
    """SHA-256 of the result without any signature entry."""
    copy = re_pb2.ActionResult()
    copy.CopyFrom(result)
    _strip(copy)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


def _strip(result: re_pb2.ActionResult) -> None:
    aux = result.execution_metadata.auxiliary_metadata
    keep = [a for a in aux if a.type_url != SIGNATURE_TYPE_URL]
    if len(keep) != len(aux):
        del aux[:]
        aux.extend(keep)


def signatures_in(result: re_pb2.ActionResult):
    return [a for a in result.execution_metadata.auxiliary_metadata if a.type_url == SIGNATURE_TYPE_URL]


def sign_result(
    result: re_pb2.ActionResult, key: SigningKey, *, instance: str, action_digest: BlobDigest, executor: str
) -> None:
    """Adds (replacing any earlier one) this executor's signature to `result`."""
    _strip(result)
    signed_at = timestamp_pb2.Timestamp()
    signed_at.GetCurrentTime()
    envelope = signing_pb2.ResultEnvelope(
        instance_name=instance,
        action_digest=action_digest.to_proto(re_pb2.Digest),
        digest_function=re_pb2.DigestFunction.SHA256,
        result_sha256=_unsigned_sha256(result),
        executor=executor,
        signed_at=signed_at,
        key_id=key.key_id,
    ).SerializeToString(deterministic=True)
    signed = signing_pb2.SignedResult(envelope=envelope, signature=key.private.sign(envelope))
    result.execution_metadata.auxiliary_metadata.append(
        any_pb2.Any(type_url=SIGNATURE_TYPE_URL, value=signed.SerializeToString(deterministic=True))
    )


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    public: Ed25519PublicKey
    executor: str = ""
    revoked: bool = False


class ResultVerifier:
    """Checks cached results against the trusted executor keys. `required` refuses unsigned
    results too; without it an unsigned result (a client's own write) passes, a signed one is
    still checked."""

    def __init__(self, keys: Iterable[TrustedKey], required: bool) -> None:
        self.keys: Dict[str, TrustedKey] = {k.key_id: k for k in keys}
        self.required = required

    def problem(self, instance: str, action_digest: BlobDigest, result: re_pb2.ActionResult) -> Optional[str]:
        """None when `result` may be served for (instance, action), else why not."""
        found = signatures_in(result)
        if not found:
            return "the result is not signed by an executor" if self.required else None
        if len(found) > 1:
            return "the result carries more than one signature"
        signed = signing_pb2.SignedResult()
        envelope = signing_pb2.ResultEnvelope()
        try:
            signed.ParseFromString(found[0].value)
            envelope.ParseFromString(signed.envelope)
        except Exception:
            return "the result's signature cannot be parsed"
        key = self.keys.get(envelope.key_id)
        if key is None:
            return f"the result is signed by key {envelope.key_id!r}, which is not trusted"
        if key.revoked:
            return f"the result is signed by revoked key {envelope.key_id!r} ({key.executor or 'executor'})"
        try:
            key.public.verify(signed.signature, signed.envelope)
        except InvalidSignature:
            return f"the signature by key {envelope.key_id!r} does not verify"
        if envelope.instance_name != instance:
            return f"the signature is for instance {envelope.instance_name!r}, not {instance!r}"
        if BlobDigest.from_proto(envelope.action_digest) != action_digest:
            return "the signature is for another action"
        if envelope.digest_function != re_pb2.DigestFunction.SHA256:
            return "the signature uses an unsupported digest function"
        if envelope.result_sha256 != _unsigned_sha256(result):
            return "the result differs from what the executor signed"
        return None
