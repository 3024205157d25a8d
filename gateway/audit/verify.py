"""Checking the audit trail: is every record there, unaltered, in its place, and sealed?

For each chain the seals are checked first (signature by a trusted key, and
the seal chain: each seal names the one before it), then every segment's
records are re-hashed and followed link by link from the hash the segment
must start from.  A clean segment costs one pass; only a segment with a
problem is walked again to say *what* happened and *where*:

modified        a record's content no longer matches its hash
deleted         the chain skips over records that are gone
inserted        a record that the chain does not lead to (forged or copied)
reordered       records whose positions do not follow the chain's order
missing-segment a sealed segment whose records are all gone
missing-seal    a closed segment without its seal, or a gap in the seal chain
altered-seal    a seal whose signature does not verify
unknown-key     a seal signed by a key that is not trusted here
seal-mismatch   a segment that differs from what its seal states
unsealed        (warning) a closed segment the sealer has not sealed yet

The result's exit code: 0 intact and sealed, 1 a problem was found, 3 intact
so far but a closed segment is not sealed yet (nothing proves it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from gateway.audit.chain import GENESIS, Segmenter, label_key
from gateway.audit.check import ArchiveCheck, Finding, SegmentCheck, check_segment
from gateway.audit.seal import Seal
from gateway.audit.store import SegmentSpan, SqlReader

__all__ = ["ArchiveCheck", "Finding", "VerifyResult", "check_segment", "verify_store"]


@dataclass(slots=True)
class VerifyResult:
    findings: list[Finding] = field(default_factory=list)
    chains: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 1
        return 3 if any(f.severity == "warning" for f in self.findings) else 0


@dataclass(slots=True)
class _Entry:
    label: str
    start: int
    seal: Seal | None = None
    span: SegmentSpan | None = None


def _entries(seals: list[Seal], spans: list[SegmentSpan]) -> list[_Entry]:
    by_label: dict[str, _Entry] = {}
    for s in seals:
        by_label[s.segment] = _Entry(s.segment, s.first_seq, seal=s)
    for sp in spans:
        e = by_label.setdefault(sp.label, _Entry(sp.label, sp.min_seq))
        e.span = sp
    return sorted(by_label.values(), key=lambda e: (e.start, label_key(e.label)))


def _check_seals(
    chain: str, seals: list[Seal], trusted: Mapping[str, bytes], out: list[Finding]
) -> None:
    prev: Seal | None = None
    prev_ok = True
    for s in seals:
        ok = s.signature_ok(trusted)
        if ok is None:
            out.append(
                Finding(
                    "error",
                    "unknown-key",
                    chain,
                    s.segment,
                    f"the seal is signed by key {s.key_id}, which is not trusted here "
                    "(add its public key to audit.trusted_keys or pass --public-key)",
                )
            )
        elif not ok:
            out.append(
                Finding(
                    "error",
                    "altered-seal",
                    chain,
                    s.segment,
                    "the seal's signature does not verify: the seal was altered",
                )
            )
        want = prev.seal_hash if prev is not None else GENESIS
        if s.prev_seal != want and prev_ok:  # after an altered seal, a mismatch is expected
            if prev is None:
                msg = "the first seal left refers to an earlier seal that is missing"
            elif s.first_seq > prev.last_seq + 1:
                msg = (
                    f"seal(s) missing between segment {prev.segment} and this one "
                    f"(for records seq {prev.last_seq + 1}..{s.first_seq - 1})"
                )
            else:
                msg = f"this seal does not follow the seal of segment {prev.segment}"
            out.append(Finding("error", "missing-seal", chain, s.segment, msg))
        elif prev is not None and (
            s.first_seq != prev.last_seq + 1 or s.prev_hash != prev.last_hash
        ):
            out.append(
                Finding(
                    "error",
                    "seal-mismatch",
                    chain,
                    s.segment,
                    f"the seal does not start where the seal of {prev.segment} ends",
                )
            )
        prev, prev_ok = s, ok is True


def _verify_chain(
    reader: SqlReader,
    chain: str,
    trusted: Mapping[str, bytes],
    segmenter: Segmenter,
    now: float,
    grace: float,
    archive_check: ArchiveCheck | None,
    result: VerifyResult,
) -> None:
    out = result.findings
    seals = reader.seals(chain)
    _check_seals(chain, seals, trusted, out)
    entries = _entries(seals, reader.segments(chain))
    stats = {"records": 0, "segments": len(entries), "sealed": len(seals), "archived": 0}
    anchor, expect = GENESIS, 1
    unsealed: list[tuple[int, _Entry, SegmentCheck]] = []
    for i, e in enumerate(entries):
        s = e.seal
        start = s.first_seq if s is not None else (e.span.min_seq if e.span else expect)
        if start > expect:
            out.append(
                Finding(
                    "error",
                    "deleted",
                    chain,
                    e.label,
                    f"records seq {expect}..{start - 1} before this segment are missing "
                    "(no segment holds them)",
                )
            )
        if s is not None and s.archive is not None:
            stats["archived"] += 1
            if e.span is not None:
                out.append(
                    Finding(
                        "warning",
                        "purge-incomplete",
                        chain,
                        e.label,
                        f"{e.span.count} records of this archived segment are still in the "
                        "store: run `lc2-gateway audit archive` again",
                    )
                )
            if archive_check is not None:
                out.extend(archive_check(s))
            anchor, expect = s.last_hash, s.last_seq + 1
            continue
        check = check_segment(
            reader.segment_records(chain, e.label) if e.span is not None else (),
            chain=chain,
            segment=e.label,
            anchor=s.prev_hash if s is not None else anchor,
            first_seq=start,
            seal=s,
            # a clean segment in one pass that keeps nothing per record (a year is large)
            again=partial(reader.segment_records, chain, e.label) if e.span is not None else None,
        )
        out.extend(check.findings)
        stats["records"] += check.count
        if s is None:
            unsealed.append((i, e, check))
        anchor = s.last_hash if s is not None else check.end_hash
        expect = (s.last_seq if s is not None else (check.last_seq or expect - 1)) + 1
    last_sealed = max((i for i, e in enumerate(entries) if e.seal is not None), default=-1)
    for i, e, check in unsealed:
        rng = f"seq {check.first_seq}..{check.last_seq}, {check.count} records"
        if i < last_sealed:
            out.append(
                Finding(
                    "error",
                    "missing-seal",
                    chain,
                    e.label,
                    f"this segment ({rng}) has no seal, but later segments are sealed: "
                    "its seal was removed",
                )
            )
        elif i < len(entries) - 1 or segmenter.end(e.label) + grace <= now:
            out.append(
                Finding(
                    "warning",
                    "unsealed",
                    chain,
                    e.label,
                    f"closed but not sealed yet ({rng}); is the gateway running? "
                    "`lc2-gateway audit seal` seals it",
                )
            )
        else:
            out.append(Finding("info", "open", chain, e.label, f"open segment ({rng})"))
    _check_head(reader, chain, seals, expect - 1, anchor, out)
    result.chains[chain] = stats


def _check_head(
    reader: SqlReader, chain: str, seals: list[Seal], last_seq: int, end: str, out: list[Finding]
) -> None:
    head = reader.head(chain)
    state = reader.rows("SELECT sealed_seq, seal_hash FROM {chain} WHERE chain = ?", (chain,))
    if head is None:
        if last_seq > 0:
            out.append(
                Finding("error", "missing-head", chain, None, "the chain's head row is missing")
            )
        return
    if head.seq > last_seq:
        msg = (
            f"records seq {last_seq + 1}..{head.seq} at the end of the chain are missing "
            f"(the chain head says it ends at seq {head.seq}): deleted"
        )
        out.append(Finding("error", "deleted", chain, head.segment, msg))
    elif head.seq < last_seq:
        msg = (
            f"records seq {head.seq + 1}..{last_seq} lie beyond the chain head: "
            "not written by the gateway (inserted)"
        )
        out.append(Finding("error", "inserted", chain, None, msg))
    elif head.hash != end:
        msg = "the last record does not end on the chain head's hash"
        out.append(Finding("error", "modified", chain, head.segment, msg, seq=head.seq))
    sealed_hash = state[0][1] if state else None
    if sealed_hash is not None and all(s.seal_hash != sealed_hash for s in seals):
        msg = f"the chain was sealed through seq {state[0][0]} but that seal is missing"
        out.append(Finding("error", "missing-seal", chain, head.sealed_segment, msg))


def verify_store(
    reader: SqlReader,
    *,
    trusted: Mapping[str, bytes],
    segmenter: Segmenter,
    now: float,
    grace: float,
    archive_check: ArchiveCheck | None = None,
    chains: Iterable[str] | None = None,
) -> VerifyResult:
    result = VerifyResult()
    if not trusted:
        result.findings.append(
            Finding("error", "unknown-key", None, None, "no public key to check seals with")
        )
    # Records, heads and seals as of one moment: on a busy store, records appended after
    # the records were read but before the head was would otherwise look deleted.
    with reader.snapshot():
        _verify_snapshot(reader, trusted, segmenter, now, grace, archive_check, chains, result)
    return result


def _verify_snapshot(
    reader: SqlReader,
    trusted: Mapping[str, bytes],
    segmenter: Segmenter,
    now: float,
    grace: float,
    archive_check: ArchiveCheck | None,
    chains: Iterable[str] | None,
    result: VerifyResult,
) -> None:
    for rid, request_id in reader.unchained():
        result.findings.append(
            Finding(
                "error",
                "inserted",
                None,
                None,
                "this record has no place in any chain: written around the gateway",
                record_id=rid,
                request_id=request_id,
            )
        )
    for chain in chains if chains is not None else reader.chains(scan=True):
        _verify_chain(reader, chain, trusted, segmenter, now, grace, archive_check, result)
