"""The hash chain: how a record is hashed, linked to the one before it, and put in a segment.

Each writer appends to its own *chain* (named by ``audit.instance``).  A
record's position is ``seq`` (1, 2, 3 ... without gaps) and its
``row_hash`` is::

    SHA-256("lc2-audit-record/1\\n" || prev_hash || "\\n"
            || canonical([chain, segment, *content]))

where ``prev_hash`` is the ``row_hash`` of the record before it (64 zeros
for the first one) and ``canonical`` is compact JSON (UTF-8, no spaces,
non-ASCII kept, floats as Python's shortest round-trip ``repr``).  The form
is written out in docs/audit.md so that an auditor can re-implement the
check without this code.

The position ``seq`` is deliberately not hashed: the order of records is
proven by the links, so a record moved to another position keeps a valid
hash of its own and shows up as *reordered* rather than *modified*.

Records are grouped into *segments* by the local period (day or hour) of
their time stamp.  A segment label never goes backwards along a chain, and
once a segment is sealed no record enters it again: a late record goes into
``<period>.2`` (then ``.3`` ...), so a seal is final.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.audit.record import Content

__all__ = [
    "GENESIS",
    "Head",
    "Segmenter",
    "assign_segment",
    "canonical",
    "label_key",
    "link",
    "record_hash",
]

GENESIS = "0" * 64
_PREFIX = b"lc2-audit-record/1\n"


def canonical(values: Iterable[object]) -> bytes:
    return json.dumps(
        list(values), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def record_hash(prev_hash: str, chain: str, segment: str, content: Content) -> str:
    h = hashlib.sha256(_PREFIX)
    h.update(prev_hash.encode("ascii", "replace"))
    h.update(b"\n")
    h.update(canonical((chain, segment, *content)))
    return h.hexdigest()


def label_key(label: str) -> tuple[str, int]:
    """Sort key of a segment label: ``2026-10-14`` < ``2026-10-14.2`` < ``2026-10-15``."""
    base, _, n = label.partition(".")
    return base, int(n) if n.isdigit() else 1


def assign_segment(period: str, head: str | None, sealed: str | None) -> str:
    seg = period
    if head is not None and label_key(head) > label_key(seg):
        seg = head  # a record stamped a little earlier than the last one stays in its segment
    if sealed is not None and label_key(seg) <= label_key(sealed):
        base, n = label_key(sealed)
        seg = f"{base}.{n + 1}"  # never write into a sealed segment
    return seg


class Segmenter:
    """Period labels and period ends in the audit's time zone."""

    def __init__(self, period: str, timezone: str) -> None:
        if period not in ("day", "hour"):
            raise ValueError(f"unknown seal period {period!r}")
        self.period = period
        self.tz = ZoneInfo(timezone)
        self._fmt = "%Y-%m-%d" if period == "day" else "%Y-%m-%dT%H"
        # (start, end, label) of the period last asked for: every record of a period
        # shares its label, and working it out costs a time-zone conversion
        self._last: tuple[float, float, str] = (0.0, 0.0, "")

    def label(self, ts: float) -> str:
        start, end, label = self._last  # one tuple: safe to read from the store's thread
        if start <= ts < end:
            return label
        label = dt.datetime.fromtimestamp(ts, self.tz).strftime(self._fmt)
        start, end = self._bounds(label)
        self._last = (start, end, label)
        return label

    def end(self, label: str) -> float:
        """Unix time at which the period of ``label`` is over."""
        return self._bounds(label)[1]

    def _bounds(self, label: str) -> tuple[float, float]:
        """Unix times at which the period of ``label`` starts and is over."""
        base = label_key(label)[0]
        hourly = "T" in base
        start = dt.datetime.strptime(base, "%Y-%m-%dT%H" if hourly else "%Y-%m-%d")
        start = start.replace(tzinfo=self.tz)
        step = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
        return start.timestamp(), (start + step).timestamp()


@dataclass(frozen=True, slots=True)
class Head:
    """Where a chain ends, read inside the transaction that appends to it."""

    seq: int = 0
    hash: str = GENESIS
    segment: str | None = None
    sealed_segment: str | None = None


def link(
    head: Head, chain: str, items: Iterable[tuple[Content, float]], segmenter: Segmenter
) -> tuple[list[tuple[object, ...]], Head]:
    """Rows (content + chain columns) for ``items`` appended after ``head``."""
    rows: list[tuple[object, ...]] = []
    seq, prev, seg = head.seq, head.hash, head.segment
    for content, ts in items:
        seg = assign_segment(segmenter.label(ts), seg, head.sealed_segment)
        seq += 1
        h = record_hash(prev, chain, seg, content)
        rows.append((*content, chain, seq, seg, prev, h))
        prev = h
    return rows, Head(seq, prev, seg, head.sealed_segment)
