"""Tampering where no seal helps yet, and segment bounds: what only the links and labels prove.

An unsealed segment is protected by its links alone: each record's hash covers the hash
of the record before it and the segment it is in.  These tests tamper with records of
unsealed segments and move records across segment boundaries, then run the real
``audit verify``; and they write records exactly on a period's boundary, in hourly
segments and in a zone other than the machine's, and check where they land and when their
segment counts as closed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import AuditWriter
from gateway.audit.chain import Segmenter
from gateway.audit.sealer import seal_due
from gateway.audit.store_sqlite import SqliteStore
from gateway.audit.verify import VerifyResult, verify_store
from tests.audit_support import at, call, cli, settings, sql, write_calls, write_config

D1, D2 = "2025-03-03", "2025-03-04"


@pytest.fixture
def machine_in_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's own zone is UTC: a bound computed without the chain's zone is 7 h off."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def _write(config: Path, stamps: Sequence[float]) -> Path:
    """Records at ``stamps`` through the real writer, no sealer; returns the store's path."""
    s = settings(config)
    writer = AuditWriter(replace(s.audit, seal_seed=None), s.services)
    await writer.start()
    try:
        # one batch: the labels of all of them are worked out in one pass of the segmenter
        await write_calls(writer, [call(ts, request_id=f"r{i}") for i, ts in enumerate(stamps)])
    finally:
        await writer.close()
    return s.audit.path


def _labels(db: Path) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in sql(db, "SELECT seq, segment FROM audit_log ORDER BY seq")]


def _verify(config: Path) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = cli("audit", "verify", "-c", str(config), "--json")
    return code, json.loads(out)["findings"]


def _found(config: Path, kind: str, segment: str, seq: int) -> None:
    """``audit verify`` fails and names this kind of finding at this place."""
    code, findings = _verify(config)
    errors = {(f["kind"], f["segment"], f["seq"]) for f in findings if f["severity"] == "error"}
    assert code == 1 and (kind, segment, seq) in errors, findings


def _verify_at(config: Path, now: float) -> VerifyResult:
    audit = settings(config).audit
    reader = SqliteStore.open(audit.path)
    try:
        return verify_store(
            reader,
            trusted={},
            segmenter=Segmenter(audit.seal_period, audit.timezone),
            now=now,
            grace=audit.seal_grace,
        )
    finally:
        reader.close()


def _states(result: VerifyResult) -> dict[str, str]:
    """Segment -> open | unsealed, as verify sees it at its ``now``."""
    return {
        f.segment: f.kind for f in result.findings if f.kind in ("open", "unsealed") and f.segment
    }


async def test_a_deleted_record_with_the_next_one_relinked_is_found(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = await _write(config, [at(D1, "10:00") + 60 * k for k in range(6)])
    assert _verify(config)[0] == 3  # intact, closed but not sealed: only the links protect it
    # seq 3 goes, and seq 4 is made to point where seq 3 pointed: every link is whole again
    (prev,) = sql(db, "SELECT prev_hash FROM audit_log WHERE seq = 3")[0]
    sql(db, "DELETE FROM audit_log WHERE seq = 3")
    sql(db, "UPDATE audit_log SET prev_hash = ? WHERE seq = 4", [prev])
    # seq 4's hash covers the hash it followed: it no longer matches what it was written after
    _found(config, "modified", D1, 4)


async def test_a_record_moved_into_the_next_unsealed_segment_is_found(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = await _write(config, [at(D1, "10:00"), at(D1, "11:00"), at(D2, "10:00")])
    assert _labels(db) == [(1, D1), (2, D1), (3, D2)]
    # the last record of D1 is moved to D2, its time stamp with it: the links are untouched
    sql(db, "UPDATE audit_log SET segment = ?, ts = ? WHERE seq = 2", [D2, "2025-03-03T17:00:00"])
    _found(config, "modified", D2, 2)


async def test_a_record_moved_out_of_a_sealed_segment_is_found(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = await _write(config, [at(D1, "10:00"), at(D1, "11:00"), at(D2, "10:00")])
    assert cli("audit", "seal", "-c", str(config))[0] == 0
    assert _verify(config)[0] == 0
    sql(db, "UPDATE audit_log SET segment = ? WHERE seq = 2", [D2])
    _found(config, "modified", D2, 2)


async def test_a_record_exactly_at_midnight_opens_the_new_day(
    tmp_path: Path, machine_in_utc: None
) -> None:
    config = write_config(tmp_path)
    midnight = at(D2, "00:00")
    db = await _write(config, [midnight - 60, midnight - 0.001, midnight, midnight + 0.001])
    assert _labels(db) == [(1, D1), (2, D1), (3, D2), (4, D2)]
    assert Segmenter("day", "Asia/Bangkok").end(D1) == midnight
    assert cli("audit", "seal", "-c", str(config))[0] == 0
    assert _verify(config) == (0, [])


async def test_hourly_segments_and_their_bounds(tmp_path: Path, machine_in_utc: None) -> None:
    config = write_config(tmp_path, seal_period="hour")
    eleven = at(D1, "11:00")
    db = await _write(config, [eleven - 1800, eleven - 0.001, eleven, eleven + 1800, eleven + 3600])
    t10, t11, t12 = f"{D1}T10", f"{D1}T11", f"{D1}T12"
    assert _labels(db) == [(1, t10), (2, t10), (3, t11), (4, t11), (5, t12)]
    grace = settings(config).audit.seal_grace
    twelve_ends = eleven + 2 * 3600
    # the last segment is open until its hour and the grace are over, then due for a seal
    assert _states(_verify_at(config, twelve_ends + grace - 1)) == {
        t10: "unsealed",
        t11: "unsealed",
        t12: "open",
    }
    assert _states(_verify_at(config, twelve_ends + grace))[t12] == "unsealed"
    # the sealer closes the same hours at the same moments
    audit = settings(config).audit
    assert audit.seal_seed is not None
    store = SqliteStore.open(audit.path)
    try:
        segmenter = Segmenter("hour", audit.timezone)
        # a segment with a later one is closed at once, even while its own hour runs
        run = seal_due(store, seed=audit.seal_seed, segmenter=segmenter, grace=grace, now=eleven)
        assert [s.segment for s in run.sealed] == [t10, t11] and not run.problems
        # the last one when its hour and the grace are over
        run = seal_due(
            store,
            seed=audit.seal_seed,
            segmenter=segmenter,
            grace=grace,
            now=twelve_ends + grace - 1,
        )
        assert run.sealed == [] and not run.problems
        run = seal_due(
            store, seed=audit.seal_seed, segmenter=segmenter, grace=grace, now=twelve_ends + grace
        )
        assert [s.segment for s in run.sealed] == [t12]
    finally:
        store.close()


async def test_segment_bounds_are_in_the_chain_time_zone(
    tmp_path: Path, machine_in_utc: None
) -> None:
    config = write_config(tmp_path)  # timezone Asia/Bangkok, UTC+7
    # 01:00 in Bangkok is still the day before in UTC: it must open a new Bangkok day
    db = await _write(config, [at(D1, "10:00"), at(D2, "01:00")])
    assert _labels(db) == [(1, D1), (2, D2)]
    grace = settings(config).audit.seal_grace
    ends = at("2025-03-05", "00:00")  # D2 ends at midnight in Bangkok, 17:00 UTC
    assert _states(_verify_at(config, ends + grace - 1)) == {D1: "unsealed", D2: "open"}
    assert _states(_verify_at(config, ends + grace)) == {D1: "unsealed", D2: "unsealed"}


async def test_every_deletion_in_a_sealed_segment_is_reported(tmp_path: Path) -> None:
    from tests.audit_support import DAYS, fill_store

    config = write_config(tmp_path, seal_interval=3600)
    await fill_store(config)
    db = tmp_path / "audit.sqlite"
    sql(db, "DELETE FROM audit_log WHERE seq IN (15, 20)")  # 20 is the segment's last record
    code, findings = _verify(config)
    assert code == 1
    deleted = [f["message"] for f in findings if f["kind"] == "deleted"]
    assert any("between seq 14" in m for m in deleted), findings
    assert any("seq 20..20 at the end of the segment" in m for m in deleted), findings
    assert all(f["segment"] == DAYS[1] for f in findings if f["severity"] == "error")
