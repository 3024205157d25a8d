"""Checking one segment: re-hash every record, follow the links, explain each break.

A clean segment costs one pass over its records.  Only a segment with a
problem is walked again, link by link from the hash it must start from, to
say *what* happened and *where* (see verify.py for the kinds of finding).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.chain import GENESIS
from gateway.audit.seal import Seal
from gateway.audit.store import StoredRecord

__all__ = ["ArchiveCheck", "Finding", "SegmentCheck", "check_segment"]


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # error | warning | info
    kind: str
    chain: str | None
    segment: str | None
    message: str
    seq: int | None = None
    record_id: int | None = None
    request_id: str | None = None

    def render(self) -> str:
        where = []
        if self.chain is not None:
            where.append(f"chain {self.chain}")
        if self.segment is not None:
            where.append(f"segment {self.segment}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.record_id is not None:
            where.append(f"id {self.record_id}")
        if self.request_id is not None:
            where.append(f"request {self.request_id}")
        place = ", ".join(where) or "store"
        return f"{self.severity.upper():7} {self.kind:15} {place}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


ArchiveCheck = Callable[[Seal], list[Finding]]


@dataclass(slots=True)
class _Link:
    id: int
    seq: int
    prev: str
    hash: str
    request_id: str
    ts: str


@dataclass(slots=True)
class SegmentCheck:
    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    end_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def _finding(kind: str, chain: str, seg: str, msg: str, link: _Link | None = None) -> Finding:
    if link is None:
        return Finding("error", kind, chain, seg, msg)
    return Finding("error", kind, chain, seg, msg, link.seq, link.id, link.request_id)


def check_segment(
    records: Iterable[StoredRecord],
    *,
    chain: str,
    segment: str,
    anchor: str,
    first_seq: int | None,
    seal: Seal | None,
    again: Callable[[], Iterable[StoredRecord]] | None = None,
) -> SegmentCheck:
    """Check one segment's records; ``anchor`` is the hash it must start from.

    With ``again`` (the same records, read anew), a segment is first checked in one
    pass that keeps nothing per record; only a segment that is not clean is read
    again and held in memory to explain its breaks.
    """
    if again is not None:
        quick = _clean_pass(records, anchor, first_seq, seal)
        if quick is not None:
            return quick
        records = again()
    out = SegmentCheck(end_hash=anchor)
    links: list[_Link] = []
    for r in records:
        link = _Link(r.id, r.seq or 0, r.prev_hash or "", r.row_hash or "", r.request_id, r.ts)
        links.append(link)
        if r.computed_hash() != r.row_hash:
            out.findings.append(
                _finding(
                    "modified",
                    chain,
                    segment,
                    "its content does not match its hash: a field was changed after it was written",
                    link,
                )
            )
    if links:
        out.count = len(links)
        out.first_seq = min(lk.seq for lk in links)
        out.last_seq = max(lk.seq for lk in links)
        out.first_ts = min(lk.ts for lk in links)
        out.last_ts = max(lk.ts for lk in links)
        start = links[0].seq
        clean = (
            links[0].prev == anchor
            and (first_seq is None or start == first_seq)
            and all(lk.seq == start + i for i, lk in enumerate(links))
            and all(links[i].prev == links[i - 1].hash for i in range(1, len(links)))
        )
        order = links if clean else _walk(links, anchor, chain, segment, out.findings)
        out.end_hash = order[-1].hash if order else anchor
        if seal is not None:
            _against_seal(seal, order, links, out)
    elif seal is not None:
        out.findings.append(
            _finding(
                "missing-segment",
                chain,
                segment,
                f"all {seal.count} records of this sealed segment (seq {seal.first_seq}.."
                f"{seal.last_seq}) are missing",
            )
        )
    return out


def _clean_pass(
    records: Iterable[StoredRecord], anchor: str, first_seq: int | None, seal: Seal | None
) -> SegmentCheck | None:
    """The check of a clean segment in constant memory; None at the first doubt."""
    out = SegmentCheck(end_hash=anchor)
    prev, start, sealed_at = anchor, None, None
    for i, r in enumerate(records):
        seq = r.seq or 0
        if start is None:
            if first_seq is not None and seq != first_seq:
                return None
            start, out.first_ts, out.last_ts = seq, r.ts, r.ts
        if seq != start + i or (r.prev_hash or "") != prev or r.computed_hash() != r.row_hash:
            return None
        assert out.first_ts is not None and out.last_ts is not None
        out.first_ts, out.last_ts = min(out.first_ts, r.ts), max(out.last_ts, r.ts)
        prev = r.row_hash or ""
        if seal is not None and prev == seal.last_hash:
            sealed_at = i
        out.count = i + 1
    if start is None:
        return out if seal is None else None
    out.first_seq, out.last_seq, out.end_hash = start, start + out.count - 1, prev
    if seal is not None and (
        sealed_at != out.count - 1 or out.count != seal.count or start != seal.first_seq
    ):
        return None
    return out


def _walk(
    links: list[_Link], anchor: str, chain: str, seg: str, findings: list[Finding]
) -> list[_Link]:
    """Follow the links from ``anchor`` and explain every place where they break."""
    succ: dict[str, list[_Link]] = defaultdict(list)
    for lk in links:
        succ[lk.prev].append(lk)
    hashes = {lk.hash for lk in links}
    seen: set[int] = set()
    order: list[_Link] = []
    cur = anchor
    while True:
        cands = [lk for lk in succ.get(cur, ()) if lk.id not in seen]
        if len(cands) > 1:
            # two records claim the same predecessor: the one the chain goes on from is real
            cands.sort(key=lambda lk: (0 if succ.get(lk.hash) else 1, lk.seq))
        if cands:
            nxt = cands[0]
        else:
            orphans = sorted(
                (lk for lk in links if lk.id not in seen and lk.prev not in hashes),
                key=lambda lk: (lk.seq, lk.id),
            )
            orphans = [lk for lk in orphans if lk.prev != anchor]
            if not orphans:
                break
            nxt = orphans[0]
            findings.append(_gap(order[-1] if order else None, nxt, chain, seg))
        seen.add(nxt.id)
        order.append(nxt)
        cur = nxt.hash
    for lk in links:
        if lk.id not in seen:
            findings.append(
                _finding(
                    "inserted",
                    chain,
                    seg,
                    "the chain does not lead to this record: it was inserted (forged or copied)",
                    lk,
                )
            )
    moved = False
    for a, b in itertools.pairwise(order):
        if b.seq < a.seq:
            moved = True
            findings.append(
                _finding(
                    "reordered",
                    chain,
                    seg,
                    f"records are out of order: by the chain, seq {b.seq} comes after seq "
                    f"{a.seq} (request {a.request_id})",
                    b,
                )
            )
    if not moved and not findings:
        for a, b in itertools.pairwise(order):
            if b.seq != a.seq + 1:
                findings.append(
                    _finding(
                        "renumbered",
                        chain,
                        seg,
                        f"positions were renumbered: seq {b.seq} follows seq {a.seq}",
                        b,
                    )
                )
                break
    return order


def _gap(before: _Link | None, after: _Link, chain: str, seg: str) -> Finding:
    if before is None:
        msg = "records missing at the start of the segment: this record refers to one not there"
    elif after.seq > before.seq + 1:
        msg = (
            f"{after.seq - before.seq - 1} record(s) missing between seq {before.seq} "
            f"(request {before.request_id}) and seq {after.seq}: deleted"
        )
    else:
        msg = (
            f"the chain breaks between seq {before.seq} and seq {after.seq}: this record "
            f"refers to a predecessor that is not there (seq {before.seq} was altered and "
            "re-hashed, or records were deleted and the rest renumbered)"
        )
    return _finding("deleted", chain, seg, msg, after)


def _against_seal(seal: Seal, order: list[_Link], links: list[_Link], out: SegmentCheck) -> None:
    chain, seg = seal.chain, seal.segment
    pos = {lk.hash: i for i, lk in enumerate(order)}
    end = pos.get(seal.last_hash)
    if end is not None and end < len(order) - 1:
        for lk in order[end + 1 :]:
            out.findings.append(
                _finding(
                    "inserted",
                    chain,
                    seg,
                    "this record follows the sealed end of the segment: inserted",
                    lk,
                )
            )
        out.end_hash = seal.last_hash
    elif end is None and not any(f.kind == "modified" for f in out.findings):
        last = max(links, key=lambda lk: lk.seq)
        if seal.last_seq > last.seq:
            msg = (
                f"records seq {last.seq + 1}..{seal.last_seq} at the end of the segment are "
                f"missing (the seal ends at seq {seal.last_seq}): deleted"
            )
            out.findings.append(_finding("deleted", chain, seg, msg))
        elif out.ok:
            out.findings.append(
                _finding(
                    "seal-mismatch", chain, seg, "the segment does not end where the seal says"
                )
            )
        out.end_hash = seal.last_hash
    if out.ok and (out.count != seal.count or out.first_seq != seal.first_seq):
        out.findings.append(
            _finding(
                "seal-mismatch",
                chain,
                seg,
                f"{out.count} records from seq {out.first_seq}, the seal states {seal.count} "
                f"from seq {seal.first_seq}",
            )
        )
