"""Ed25519 keys that sign sealed audit segments.

Signatures, not an HMAC: whoever verifies the trail (an auditor, the head of
unit, a court expert) needs only the *public* key, and holding it gives no
power to forge a seal.  The private key stays in a file (or environment
variable) outside the audit store, readable by the gateway user only.
Keys are handled here as raw 32-byte values so that frozen settings can be
compared; they are turned into key objects only where they are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "key_id",
    "load_private_seed",
    "load_public",
    "new_private_pem",
    "public_from_seed",
    "public_pem",
    "seed_from_hex",
    "sign",
    "trusted_map",
    "verify_signature",
]

_RAW = serialization.Encoding.Raw


def new_private_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_private_seed(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def seed_from_hex(text: str) -> bytes:
    try:
        seed = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("an Ed25519 seed is 64 hexadecimal characters") from None
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 64 hexadecimal characters")
    return seed


def load_public(path: Path) -> bytes:
    """A PEM public key, or the public half of a PEM private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return public_from_seed(load_private_seed(path))
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(_RAW, serialization.PublicFormat.Raw)


def public_from_seed(seed: bytes) -> bytes:
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return pub.public_bytes(_RAW, serialization.PublicFormat.Raw)


def public_pem(public: bytes) -> str:
    key = Ed25519PublicKey.from_public_bytes(public)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(public: bytes) -> str:
    """Short, stable name of a public key, written into every seal it signs."""
    return hashlib.sha256(public).hexdigest()[:16]


def sign(seed: bytes, message: bytes) -> str:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message).hex()


def verify_signature(public: bytes, message: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def trusted_map(publics: Iterable[bytes]) -> Mapping[str, bytes]:
    return {key_id(p): p for p in publics}
