"""The seal keys: PEM files and hex seeds in, raw keys out, and only Ed25519 accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import keys
from tests.test_audit_formats import PUBLIC, SEED


def test_a_new_private_key_reads_back_as_a_seed_and_its_public_half(tmp_path: Path) -> None:
    pem = keys.new_private_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    path = tmp_path / "seal.key"
    path.write_text(pem, encoding="ascii")
    seed = keys.load_private_seed(path)
    assert len(seed) == 32
    public = keys.public_from_seed(seed)
    assert keys.load_public(path) == public  # the public half of a private key file
    pub_file = tmp_path / "seal.pub"
    pub_file.write_text(keys.public_pem(public), encoding="ascii")
    assert keys.public_pem(public).startswith("-----BEGIN PUBLIC KEY-----\n")
    assert keys.load_public(pub_file) == public
    assert keys.new_private_pem() != pem


def test_a_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "ec.key"
    private.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "ec.pub"
    public.write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        keys.load_private_seed(private)
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        keys.load_public(private)
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        keys.load_public(public)


def test_a_seed_is_exactly_64_hexadecimal_characters() -> None:
    assert keys.seed_from_hex(f"  {SEED.hex()}\n") == SEED
    assert keys.public_from_seed(keys.seed_from_hex(SEED.hex())).hex() == PUBLIC
    for text in (SEED.hex()[:-2], SEED.hex() + "00", "zz" * 32, ""):
        with pytest.raises(ValueError, match="64 hexadecimal characters"):
            keys.seed_from_hex(text)


def test_a_signature_verifies_only_for_its_message_and_key() -> None:
    signature = keys.sign(SEED, b"payload")
    public = bytes.fromhex(PUBLIC)
    assert keys.verify_signature(public, b"payload", signature) is True
    assert keys.verify_signature(public, b"payload!", signature) is False
    assert keys.verify_signature(keys.public_from_seed(b"\1" * 32), b"payload", signature) is False
    assert keys.verify_signature(public, b"payload", "not hex") is False
    assert keys.trusted_map([public]) == {"24f6ed6acbfe1009": public}
