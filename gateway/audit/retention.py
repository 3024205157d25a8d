"""Retention: archive old sealed segments to compressed files, verify them, then purge.

An archive is one gzip'd JSON Lines file per segment,
``<archive_dir>/<chain>/<segment>.jsonl.gz``: a header line with the
format, the column names and the segment's seal (signature included), then
one JSON array per record with every column, hashes included.  It is
verifiable on its own with the public key (``lc2-gateway audit verify
--archive FILE --public-key KEY``), and the store keeps the seal with the
file's SHA-256, so the seal chain, and with it the chain of the records
that stay, is unbroken after the purge.

Only a *prefix* of each chain is archived (oldest first, stopping at the
first segment that is too young, unsealed, or fails verification): the
store always holds the newest part of every chain, anchored on the last
archived seal.  A segment that fails verification is never archived or
purged: evidence of tampering stays where it was found.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from gateway.audit.check import Finding, check_segment
from gateway.audit.record import iso_utc
from gateway.audit.seal import SEAL_COLUMNS, Seal
from gateway.audit.store import ALL_COLUMNS, SegmentSpan, StoredRecord

__all__ = [
    "FORMAT",
    "ArchiveRun",
    "ArchivingStore",
    "archive_due",
    "archive_path",
    "archive_rows",
    "check_archive",
    "read_archive",
    "write_archive",
]

FORMAT = "lc2-gateway-audit-archive/1"


class ArchivingStore(Protocol):
    def chains(self) -> list[str]: ...

    def seals(self, chain: str) -> list[Seal]: ...

    def segments(self, chain: str) -> list[SegmentSpan]: ...

    def segment_records(self, chain: str, segment: str) -> Iterator[StoredRecord]: ...

    def mark_archived(self, seal: Seal, name: str, sha256: str, at: str) -> None: ...

    def purge_segment(self, seal: Seal, batch: int = 2000) -> int: ...


def archive_path(archive_dir: Path, seal: Seal) -> tuple[Path, str]:
    name = f"{seal.chain}/{seal.segment}.jsonl.gz"
    return archive_dir / name, name


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_archive(path: Path, seal: Seal, records: Iterator[StoredRecord]) -> str:
    """Write atomically (temp file, fsync, rename); return the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    header = {
        "format": FORMAT,
        "columns": list(ALL_COLUMNS),
        "seal": {c: v for c, v in seal.as_dict().items() if c in (*SEAL_COLUMNS, "seal_hash")},
    }
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write((_dumps(header) + "\n").encode("utf-8"))
            for r in records:
                gz.write((_dumps([r.id, *r.content, *r.chain_values()]) + "\n").encode("utf-8"))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself must survive a power cut before the purge
    finally:
        os.close(fd)
    return _sha256(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_archive(path: Path) -> tuple[Seal, Iterator[StoredRecord]]:
    with gzip.open(path, "rt", encoding="utf-8") as gz:
        header = json.loads(gz.readline())
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"not an audit archive ({FORMAT})")
    if header.get("columns") != list(ALL_COLUMNS):
        raise ValueError("unexpected columns")
    seal = Seal.from_values([header["seal"][c] for c in SEAL_COLUMNS])

    def records() -> Iterator[StoredRecord]:
        with gzip.open(path, "rt", encoding="utf-8") as gz:
            gz.readline()
            for line in gz:
                if line.strip():
                    yield StoredRecord.from_row(json.loads(line))

    return seal, records()


def check_archive(
    path: Path,
    trusted: Mapping[str, bytes],
    *,
    expected: Seal | None = None,
) -> list[Finding]:
    """Findings for one archive file; ``expected`` is the seal the store still holds."""
    chain = expected.chain if expected else None
    seg = expected.segment if expected else None
    if not path.exists():
        return [Finding("error", "archive-missing", chain, seg, f"archive file {path} is missing")]
    out: list[Finding] = []
    if expected is not None and expected.archive_sha256 not in (None, _sha256(path)):
        out.append(
            Finding("error", "archive-altered", chain, seg, f"{path} differs from when written")
        )
    try:
        seal, records = read_archive(path)
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        return [*out, Finding("error", "archive-altered", chain, seg, f"{path}: {exc}")]
    chain, seg = seal.chain, seal.segment
    if expected is not None and seal.payload() != expected.payload():
        out.append(
            Finding("error", "altered-seal", chain, seg, "its seal differs from the store's")
        )
    ok = seal.signature_ok(trusted)
    if ok is None:
        out.append(
            Finding("error", "unknown-key", chain, seg, f"sealed by untrusted key {seal.key_id}")
        )
    elif not ok:
        out.append(Finding("error", "altered-seal", chain, seg, "the archive's seal is altered"))
    try:
        check = check_segment(
            records,
            chain=chain,
            segment=seg,
            anchor=seal.prev_hash,
            first_seq=seal.first_seq,
            seal=seal,
        )
    except (OSError, ValueError, EOFError, json.JSONDecodeError) as exc:
        return [*out, Finding("error", "archive-altered", chain, seg, f"{path}: {exc}")]
    out.extend(check.findings)
    return out


@dataclass(slots=True)
class ArchiveRun:
    archived: list[Seal] = field(default_factory=list)
    purged: int = 0
    planned: list[Seal] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)


def archive_due(
    store: ArchivingStore,
    *,
    archive_dir: Path,
    keep_days: int,
    trusted: Mapping[str, bytes],
    now: float | None = None,
    dry_run: bool = False,
    purge: bool = True,
) -> ArchiveRun:
    now = time.time() if now is None else now
    cutoff = iso_utc(now - keep_days * 86_400)
    run = ArchiveRun()
    for chain in store.chains():
        present = {s.label for s in store.segments(chain)}
        for seal in store.seals(chain):
            if seal.archive is not None:
                if purge and not dry_run and seal.segment in present:
                    run.purged += store.purge_segment(seal)  # an interrupted purge
                continue
            if seal.last_ts >= cutoff:
                break
            check = check_segment(
                store.segment_records(chain, seal.segment),
                chain=chain,
                segment=seal.segment,
                anchor=seal.prev_hash,
                first_seq=seal.first_seq,
                seal=seal,
                again=partial(store.segment_records, chain, seal.segment),
            )
            problems = list(check.findings)
            if seal.signature_ok(trusted) is not True:
                problems.append(
                    Finding("error", "altered-seal", chain, seal.segment, "seal does not verify")
                )
            if problems:
                run.problems.extend(problems)
                break
            if dry_run:
                run.planned.append(seal)
                continue
            path, name = archive_path(archive_dir, seal)
            sha = write_archive(path, seal, store.segment_records(chain, seal.segment))
            written = check_archive(path, trusted, expected=seal)
            if written:
                run.problems.extend(written)
                break
            store.mark_archived(seal, name, sha, iso_utc(time.time()))
            run.archived.append(seal)
            if purge:
                run.purged += store.purge_segment(seal)
    return run


def archive_rows(
    archive_dir: Path, seals: list[Seal], since: str | None, until: str | None
) -> Iterator[dict[str, Any]]:
    """Records of archived segments that overlap [since, until), for search and export."""
    for seal in seals:
        if seal.archive is None:
            continue
        if (until is not None and seal.first_ts >= until) or (
            since is not None and seal.last_ts < since
        ):
            continue
        _, records = read_archive(archive_dir / seal.archive)
        for r in records:
            yield r.as_dict()
