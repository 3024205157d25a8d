"""API keys: random tokens, stored in the config only as SHA-256 digests.

A key is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is
enough to keep it safe in the file: there is nothing to guess that a slow
KDF would protect, and verifying it costs a microsecond, not the tens of
milliseconds a password hash does.  ``python -m gateway.security.apikey``
prints a new key (hand it to the consumer) and the line for the config.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["check_key_hash", "hash_api_key", "key_digest", "new_api_key"]

_FORM = re.compile(r"sha256:[0-9a-f]{64}")


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The form the config holds: ``sha256:<64 hex digits>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_digest(key: str) -> bytes:
    """What a presented key is looked up by."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def check_key_hash(stored: str) -> bytes:
    """The digest of a configured ``sha256:…`` value; ValueError if it is not one."""
    if not _FORM.fullmatch(stored):
        raise ValueError("an API key hash is 'sha256:' and 64 lower-case hex digits")
    return bytes.fromhex(stored.removeprefix("sha256:"))


def main() -> None:
    key = new_api_key()
    print(f"API key (give it to the consumer, keep no copy): {key}")
    print(f"for the config, under the consumer's api_keys:  {hash_api_key(key)}")


if __name__ == "__main__":
    main()
