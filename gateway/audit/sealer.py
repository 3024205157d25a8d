"""Sealing closed segments: check them, sign a digest, chain it to the previous seal.

A segment is closed when a later segment exists on its chain, or when its
period ended more than ``seal_grace`` seconds ago (a late record then goes
into ``<period>.2``, see chain.py).  Before signing, the segment is checked
link by link from the previous seal: the sealer never signs records that
already fail verification; it reports them instead.

The gateway's writers seal their own chain; ``lc2-gateway audit seal`` may
seal any chain.  Several sealers of one chain (the workers of an instance)
never fork its seal chain: a seal is stored only if the chain's last seal is
still the one it was built on, and the segment still ends where it was read.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.audit.chain import GENESIS, Segmenter
from gateway.audit.check import Finding, check_segment
from gateway.audit.record import iso_utc
from gateway.audit.seal import Seal, make_seal
from gateway.audit.store import SegmentSpan, StoredRecord

__all__ = ["SealRun", "SealingStore", "seal_due"]


class SealingStore(Protocol):
    def chains(self, *, scan: bool = False) -> list[str]: ...

    def last_seal(self, chain: str) -> Seal | None: ...

    def tail_segments(self, chain: str, after_seq: int) -> list[SegmentSpan]: ...

    def segment_records(self, chain: str, segment: str) -> Iterable[StoredRecord]: ...

    def insert_seal(self, seal: Seal, previous: Seal | None) -> bool: ...


@dataclass(slots=True)
class SealRun:
    sealed: list[Seal] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)


def seal_due(
    store: SealingStore,
    *,
    seed: bytes,
    segmenter: Segmenter,
    grace: float,
    now: float | None = None,
    chains: Iterable[str] | None = None,
    include_open: bool = False,
) -> SealRun:
    """Seal every closed, unsealed segment (with ``include_open``, the open one too)."""
    now = time.time() if now is None else now
    run = SealRun()
    for chain in chains if chains is not None else store.chains():
        for _ in range(5):  # another sealer got there first: start again from its seal
            if not _seal_chain(store, chain, seed, segmenter, grace, now, include_open, run):
                break
    return run


def _seal_chain(
    store: SealingStore,
    chain: str,
    seed: bytes,
    segmenter: Segmenter,
    grace: float,
    now: float,
    include_open: bool,
    run: SealRun,
) -> bool:
    """Seal what is due on one chain; True if it lost a race and should look again."""
    last = store.last_seal(chain)
    spans = store.tail_segments(chain, last.last_seq if last is not None else 0)
    for i, span in enumerate(spans):
        closed = i < len(spans) - 1 or include_open or segmenter.end(span.label) + grace <= now
        if not closed:
            return False
        anchor = last.last_hash if last is not None else GENESIS
        check = check_segment(
            store.segment_records(chain, span.label),
            chain=chain,
            segment=span.label,
            anchor=anchor,
            first_seq=last.last_seq + 1 if last is not None else 1,
            seal=None,
            again=functools.partial(store.segment_records, chain, span.label),
        )
        if not check.ok:
            run.problems.extend(check.findings)
            return False  # a later seal would vouch for this segment through the chain
        assert check.first_seq is not None and check.last_seq is not None
        assert check.first_ts is not None and check.last_ts is not None
        seal = make_seal(
            chain=chain,
            segment=span.label,
            first_seq=check.first_seq,
            last_seq=check.last_seq,
            count=check.count,
            first_ts=check.first_ts,
            last_ts=check.last_ts,
            prev_hash=anchor,
            last_hash=check.end_hash,
            previous=last,
            sealed_at=iso_utc(time.time()),
            seed=seed,
        )
        if not store.insert_seal(seal, last):
            return True  # the chain moved (another sealer, a late record)
        run.sealed.append(seal)
        last = seal
    return False
