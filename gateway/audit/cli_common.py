"""What the audit commands share: loading the config, opening the store, keys, output."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from gateway.audit import keys
from gateway.audit.config import AuditSettings
from gateway.audit.store import SqlReader, StoreError

__all__ = ["Fail", "check_key", "load", "open_store", "output", "run", "trusted"]


class Fail(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load(path: str) -> Any:
    from gateway.config.build import load_settings
    from gateway.config.loader import ConfigError

    try:
        return load_settings(Path(path), create_key_file=False)
    except ConfigError as exc:
        raise Fail(f"invalid config {path}:\n{exc}", 2) from None
    except OSError as exc:
        raise Fail(f"cannot read {path}: {exc}", 2) from None


def open_store(audit: AuditSettings) -> Any:
    """The store of the config, for reading and for seal/archive maintenance."""
    try:
        if audit.store == "postgresql":
            from gateway.audit.store_postgres import PgSyncStore

            assert audit.postgresql is not None
            return PgSyncStore(audit.postgresql)
        from gateway.audit.store_sqlite import SqliteStore

        return SqliteStore.open(audit.path, synchronous=audit.synchronous)
    except StoreError as exc:
        raise Fail(str(exc)) from None


def trusted(audit: AuditSettings | None, extra: Iterable[str]) -> dict[str, bytes]:
    publics: list[bytes] = []
    if audit is not None:
        if audit.seal_seed is not None:
            publics.append(keys.public_from_seed(audit.seal_seed))
        publics.extend(audit.trusted_keys)
    for p in extra:
        try:
            publics.append(keys.load_public(Path(p)))
        except (OSError, ValueError) as exc:
            raise Fail(f"--public-key {p}: {exc}", 2) from None
    return dict(keys.trusted_map(publics))


def check_key(reader: SqlReader, audit: AuditSettings) -> None:
    from gateway.audit.writer import key_fingerprint

    stored = reader.meta("key_fingerprint")
    if stored is not None and stored != key_fingerprint(audit.key):
        raise Fail(
            "the config's audit key is not the key this store was written with: "
            "citizen IDs would not be found (check audit.key / audit.key_file)"
        )


def output(path: str | None) -> TextIO:
    if path is None or path == "-":
        return sys.stdout
    return open(path, "w", encoding="utf-8", newline="")


def run(func: Any) -> Any:
    """Turn a command's Fail into a message and an exit code."""

    def wrapped(args: Any) -> int:
        try:
            code: int = func(args)
        except Fail as exc:
            print(f"lc2-gateway: {exc}", file=sys.stderr)
            return exc.code
        return code

    return wrapped
