"""Seals: a signed digest of one closed segment, chained to the seal before it.

A seal states, for one segment of one chain: the first and last position,
the number of records, the first and last time stamp, the hash the segment
starts from (the last hash of the segment before it), the hash it ends on,
and the hash of the previous seal of the chain.  Its canonical payload::

    "lc2-audit-seal/1\\n" || canonical([chain, segment, first_seq, last_seq, count,
        first_ts, last_ts, prev_hash, last_hash, prev_seal, sealed_at, key_id])

is signed with Ed25519; ``seal_hash`` = SHA-256(payload) is what the next
seal's ``prev_seal`` refers to.  Because ``last_hash`` commits to every
record before it through the chain, one valid seal proves its whole segment
and everything earlier; the seal chain proves that no segment was dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gateway.audit import keys
from gateway.audit.chain import GENESIS, canonical

__all__ = ["SEAL_COLUMNS", "Seal", "make_seal"]

SEAL_COLUMNS: tuple[str, ...] = (
    "chain",
    "segment",
    "first_seq",
    "last_seq",
    "count",
    "first_ts",
    "last_ts",
    "prev_hash",
    "last_hash",
    "prev_seal",
    "sealed_at",
    "key_id",
    "signature",
)
_PREFIX = b"lc2-audit-seal/1\n"


@dataclass(frozen=True, slots=True)
class Seal:
    chain: str
    segment: str
    first_seq: int
    last_seq: int
    count: int
    first_ts: str
    last_ts: str
    prev_hash: str
    last_hash: str
    prev_seal: str
    sealed_at: str
    key_id: str
    signature: str
    # bookkeeping once the segment is archived: not signed, checked against the file
    archive: str | None = None
    archive_sha256: str | None = None

    def payload(self) -> bytes:
        return _PREFIX + canonical(
            (
                self.chain,
                self.segment,
                self.first_seq,
                self.last_seq,
                self.count,
                self.first_ts,
                self.last_ts,
                self.prev_hash,
                self.last_hash,
                self.prev_seal,
                self.sealed_at,
                self.key_id,
            )
        )

    @property
    def seal_hash(self) -> str:
        return hashlib.sha256(self.payload()).hexdigest()

    def values(self) -> tuple[object, ...]:
        """Values in SEAL_COLUMNS order."""
        return tuple(getattr(self, c) for c in SEAL_COLUMNS)

    @classmethod
    def from_values(
        cls, values: Sequence[Any], archive: str | None = None, sha: str | None = None
    ) -> Seal:
        if len(values) != len(SEAL_COLUMNS):
            raise ValueError("a seal has 13 values")
        seal = cls(*values)
        return replace(seal, archive=archive, archive_sha256=sha) if archive or sha else seal

    def signature_ok(self, trusted: Mapping[str, bytes]) -> bool | None:
        """True or False; None when the key that signed it is not trusted here."""
        public = trusted.get(self.key_id)
        if public is None:
            return None
        return keys.verify_signature(public, self.payload(), self.signature)

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = dict(zip(SEAL_COLUMNS, self.values(), strict=True))
        d["seal_hash"] = self.seal_hash
        return d


def make_seal(
    *,
    chain: str,
    segment: str,
    first_seq: int,
    last_seq: int,
    count: int,
    first_ts: str,
    last_ts: str,
    prev_hash: str,
    last_hash: str,
    previous: Seal | None,
    sealed_at: str,
    seed: bytes,
) -> Seal:
    unsigned = Seal(
        chain=chain,
        segment=segment,
        first_seq=first_seq,
        last_seq=last_seq,
        count=count,
        first_ts=first_ts,
        last_ts=last_ts,
        prev_hash=prev_hash,
        last_hash=last_hash,
        prev_seal=previous.seal_hash if previous is not None else GENESIS,
        sealed_at=sealed_at,
        key_id=keys.key_id(keys.public_from_seed(seed)),
        signature="",
    )
    return replace(unsigned, signature=keys.sign(seed, unsigned.payload()))
