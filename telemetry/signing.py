"""Signed configuration envelopes: what the centre pushes to a gateway (docs/fleet.md).

The centre holds an Ed25519 key pair (RFC 8032, docs/sources.md#ed25519); every gateway holds
the public key. An envelope carries one gateway's configuration file as text, the gateway and
site it is for, a version number that only grows, the text's SHA-256, and a signature over a
canonical encoding of all of these. The gateway accepts nothing the key did not sign: the
broker's ACL (only the centre may write the topic) is one lock, the signature a second one
that holds even if a broker account leaks.

The canonical encoding is a fixed domain tag and the fields as JSON with sorted keys, no
spaces, UTF-8: the same bytes on both sides whatever the JSON library, and a signature made for
a configuration can never be replayed as the signature of something else (another tag).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from telemetry.errors import first_error

M = TypeVar("M", bound=BaseModel)

_DOMAIN = b"dynamo-fleet-config-v1\n"
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# A configuration file is a few kilobytes; a megabyte is a mistake, not a configuration.
MAX_CONFIG_CHARS = 1_000_000


class SigningError(Exception):
    """A key, signature or envelope refused; the message says what and where."""


class Envelope(BaseModel):
    """One signed configuration for one gateway (the retained message of its config topic)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    site: Ident
    gateway: Ident
    # Milliseconds since the epoch at the push, and always above the previous push's: the
    # gateway refuses a version not above the one it runs (an old message replayed).
    version: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    config: str = Field(max_length=MAX_CONFIG_CHARS)
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature."""
        return canonical(_DOMAIN, self.model_dump(exclude={"signature"}))

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def canonical(domain: bytes, fields: dict[str, Any]) -> bytes:
    """A domain tag then `fields` as JSON (sorted keys, no spaces, UTF-8): the bytes a
    signature covers. Each signed kind has its own tag (configurations, upgrade notices), so
    a signature made for one can never be replayed as the other."""
    return domain + json.dumps(fields, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()


def sign_bytes(key: Ed25519PrivateKey, data: bytes) -> str:
    """The Ed25519 signature of `data`, base64."""
    return base64.b64encode(key.sign(data)).decode()


def check_signature(key: Ed25519PublicKey, signature: str, data: bytes) -> None:
    """Raise `SigningError` unless `signature` (base64) is `key`'s over `data`."""
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        raise SigningError("bad signature: not signed by the centre's key") from None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generate_keys(private_path: Path, public_path: Path) -> None:
    """A new Ed25519 key pair: the private key 0600 (refused if either file exists, so that a
    key every gateway trusts is never overwritten by accident)."""
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path}: already exists; remove it first if you really mean "
                               "to replace the key every gateway trusts")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The centre's signing key; refused with where and why."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key (PEM, `dynamo fleet keygen`)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The key a gateway checks pushed configurations with; refused with where and why."""
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key (PEM, `dynamo fleet keygen`)")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read: {exc.strerror}") from None


def sign(key: Ed25519PrivateKey, *, site: str, gateway: str, version: int,
         config: str) -> Envelope:
    """The signed envelope of one configuration text for one gateway."""
    unsigned = Envelope(site=site, gateway=gateway, version=version, sha256=text_sha256(config),
                        config=config)
    return unsigned.model_copy(update={"signature": sign_bytes(key, unsigned.signed_bytes())})


def decode_signed(model: type[M], payload: bytes, what: str) -> M:
    """Parse a signed document (not verified yet); `SigningError` says what is malformed."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise SigningError(f"malformed {what}: {first_error(exc)}") from None


def decode(payload: bytes) -> Envelope:
    """Parse an envelope (not verified yet); `SigningError` says what is malformed."""
    return decode_signed(Envelope, payload, "envelope")


def verify(envelope: Envelope, key: Ed25519PublicKey) -> None:
    """Raise `SigningError` unless `key` signed exactly this envelope and its hash is the
    text's."""
    check_signature(key, envelope.signature, envelope.signed_bytes())
    if text_sha256(envelope.config) != envelope.sha256:  # signed, so only a bug of the signer
        raise SigningError("sha256 does not match the configuration text")
