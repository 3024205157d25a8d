"""The audit writer on a real SQLite store: one chain, group commit, fail closed or open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.audit import AuditWriter
from gateway.audit.chain import Segmenter, assign_segment, label_key
from gateway.audit.record import Content, content_from_call, subject_hash
from gateway.audit.sealer import seal_due
from gateway.audit.store_sqlite import SqliteStore, SqliteWriterStore
from gateway.audit.writer import key_fingerprint
from gateway.errors import AuditUnavailable
from tests.audit_support import (
    at,
    call,
    cli,
    commit_past_two_timeouts,
    pid_for,
    settings,
    sql,
    write_calls,
    write_config,
)
from tests.support import assert_sqlite_free, others_turn


async def _writer(config: Path, **over: object) -> AuditWriter:
    s = settings(config)
    writer = AuditWriter(replace(s.audit, **over), s.services)  # type: ignore[arg-type]
    await writer.start()
    return writer


def _seqs(db: Path) -> list[int]:
    return [r[0] for r in sql(db, "SELECT seq FROM audit_log ORDER BY seq")]


def test_segment_labels_never_go_back_and_never_reopen_a_seal() -> None:
    assert assign_segment("2026-10-14", None, None) == "2026-10-14"
    assert assign_segment("2026-10-13", "2026-10-14", None) == "2026-10-14"
    assert assign_segment("2026-10-14", "2026-10-14", "2026-10-14") == "2026-10-14.2"
    assert assign_segment("2026-10-14", "2026-10-14.2", "2026-10-14.2") == "2026-10-14.3"
    assert assign_segment("2026-10-15", "2026-10-14.2", "2026-10-14.2") == "2026-10-15"
    ordered = ["2026-10-14", "2026-10-14.2", "2026-10-14.10", "2026-10-15"]
    assert sorted(reversed(ordered), key=label_key) == ordered


async def test_two_writers_on_one_file_extend_one_chain(tmp_path: Path) -> None:
    """What `serve --workers 2` does: two processes' writers, one SQLite file, one chain."""
    config = write_config(tmp_path, seal_interval=3600)
    a, b = await _writer(config), await _writer(config)
    base = at("2025-03-03", "09:00")
    await asyncio.gather(
        write_calls(a, [call(base + i, pid=pid_for(i)) for i in range(300)], chunk=25),
        write_calls(b, [call(base + i, pid=pid_for(i)) for i in range(300)], chunk=25),
    )
    await a.close()
    await b.close()
    assert _seqs(tmp_path / "audit.sqlite") == list(range(1, 601))
    code, out, _ = cli("audit", "seal", "-c", str(config), "--include-open")
    assert code == 0, out
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 0, out


async def test_chain_continues_across_restarts_and_late_records_never_enter_a_seal(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, seal_interval=3600)
    w = await _writer(config, seal_seed=None)  # sealed below, by the command line
    await write_calls(w, [call(at("2025-03-03", "10:00") + i) for i in range(5)])
    await w.close()
    code, out, _ = cli("audit", "seal", "-c", str(config))  # the day is long over
    assert code == 0 and "segment 2025-03-03:" in out
    w = await _writer(config)  # a restart
    late = call(at("2025-03-03", "16:00"))  # stamped on the sealed day (a clock set back)
    await w.commit(late)
    await w.close()
    rows = sql(
        tmp_path / "audit.sqlite", "SELECT seq, segment, request_id FROM audit_log ORDER BY seq"
    )
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1][1:] == ("2025-03-03.2", late.request_id)
    assert cli("audit", "seal", "-c", str(config))[0] == 0
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 0 and "2 sealed" in out, out


@contextlib.contextmanager
def _locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process holds the write lock (as a stuck backup or a hung tool would)."""
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


async def _until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_fail_closed_refuses_then_recovers_without_any_call(tmp_path: Path) -> None:
    config = write_config(tmp_path, retry_interval=0.1, commit_timeout=5)
    w = await _writer(config)
    db = tmp_path / "audit.sqlite"
    await w.commit(call(time.time()))
    with _locked(db):
        with pytest.raises(AuditUnavailable):
            await w.commit(call(time.time(), request_id="refused"))
        assert not w.healthy and "locked" in (w.last_error or "")
        assert w.status()["status"] == "down" and w.status()["failClosed"] is True
    await _until(lambda: w.healthy)  # the probe, not a call, found the store writable
    await w.close()
    ids = {r[0] for r in sql(db, "SELECT request_id FROM audit_log")}
    assert "refused" not in ids and len(ids) == 1  # a refused call is not recorded as served


async def test_a_timed_out_commit_is_refused_and_never_written(tmp_path: Path) -> None:
    config = write_config(tmp_path, commit_timeout=0.3)
    w = await _writer(config)
    db = tmp_path / "audit.sqlite"
    blocker = sqlite3.connect(db, timeout=0, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.2, blocker.rollback)  # longer than commit_timeout
    release.start()
    try:
        with pytest.raises(AuditUnavailable):
            await w.commit(call(time.time(), request_id="too-late"))
    finally:
        await asyncio.to_thread(release.join)
        blocker.close()
    # the writer got the lock after its caller was answered 503: it must not write it
    await w.commit(call(time.time(), request_id="after"))
    await w.close()
    ids = [r[0] for r in sql(db, "SELECT request_id FROM audit_log")]
    assert ids == ["after"]


async def test_a_commit_that_outlives_its_timeout_inside_the_transaction_is_not_recorded_as_served(
    tmp_path: Path,
) -> None:
    """Told 503, recorded 200: never. The transaction that overran is rolled back."""
    import gateway.audit.store_sqlite as store_sqlite

    config = write_config(tmp_path, commit_timeout=0.3)
    await commit_past_two_timeouts(await _writer(config), store_sqlite, commit_timeout=0.3)
    db = tmp_path / "audit.sqlite"
    rows = sql(db, "SELECT request_id, status FROM audit_log ORDER BY seq")
    assert ("overran", 200) not in rows and rows[-1] == ("after", 200), rows
    assert _seqs(db) == list(range(1, len(rows) + 1))


async def test_writers_on_one_file_take_turns_before_their_transaction(tmp_path: Path) -> None:
    """Workers queue for the file on its ``-writers`` lock, not in SQLite's polling busy wait."""
    config = write_config(tmp_path, commit_timeout=0.3)
    w = await _writer(config)
    db = tmp_path / "audit.sqlite"
    await w.commit(call(time.time(), request_id="first"))
    with others_turn(db):  # for longer than commit_timeout
        with pytest.raises(AuditUnavailable):
            await w.commit(call(time.time(), request_id="waited"))
        assert_sqlite_free(db)  # only the turn held the writer back
    await w.commit(call(time.time(), request_id="after"))
    await w.close()
    ids = [r[0] for r in sql(db, "SELECT request_id FROM audit_log ORDER BY seq")]
    assert ids == ["first", "after"]  # the caller answered 503 is not recorded as served


async def test_fail_open_answers_and_writes_the_backlog_in_order(tmp_path: Path) -> None:
    config = write_config(tmp_path, fail_closed=False, retry_interval=0.1, commit_timeout=3)
    w = await _writer(config)
    db = tmp_path / "audit.sqlite"
    await w.commit(call(time.time(), request_id="before"))
    with _locked(db):
        t0 = time.monotonic()
        await w.commit(call(time.time(), request_id="during-0"))  # waits one busy timeout
        for i in range(1, 20):
            await w.commit(call(time.time(), request_id=f"during-{i}"))
        assert time.monotonic() - t0 < 4  # answered, not held until the store returns
        assert not w.healthy and w.unconfirmed == 20 and w.queue_depth == 20
    await _until(lambda: w.queue_depth == 0 and w.healthy)
    await w.commit(call(time.time(), request_id="after"))
    await w.close()
    ids = [r[0] for r in sql(db, "SELECT request_id FROM audit_log ORDER BY seq")]
    assert ids == ["before", *(f"during-{i}" for i in range(20)), "after"]
    assert w.lost == 0
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_a_changed_key_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    w = await _writer(config)
    await w.close()
    with pytest.raises(RuntimeError, match="audit key does not match"):
        await _writer(config, key=b"another key of 32 characters...")


V1_SCHEMA = """
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, request_id TEXT NOT NULL,
    consumer TEXT, office TEXT, officer TEXT, client_ip TEXT, user_agent TEXT,
    method TEXT NOT NULL, path TEXT NOT NULL, service TEXT NOT NULL, kind TEXT NOT NULL,
    sandbox INTEGER NOT NULL, subject_hash TEXT, subject_hint TEXT, params TEXT NOT NULL,
    status INTEGER NOT NULL, code TEXT NOT NULL, rows INTEGER NOT NULL,
    latency_ms REAL NOT NULL, backend_ms REAL, error TEXT);
CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


async def test_a_store_from_before_chaining_is_upgraded_once(tmp_path: Path) -> None:
    from gateway.audit.writer import key_fingerprint

    config = write_config(tmp_path, seal_interval=3600)
    s = settings(config)
    db = tmp_path / "audit.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as old, old:
        old.executescript(V1_SCHEMA)
        old.executemany(
            "INSERT INTO audit_meta VALUES (?, ?)",
            [("key_fingerprint", key_fingerprint(s.audit.key)), ("schema_version", "1")],
        )
        for i in range(3):
            old.execute(
                "INSERT INTO audit_log (ts, request_id, method, path, service, kind, sandbox, "
                "params, status, code, rows, latency_ms) VALUES (?, ?, 'GET', '/api/v1/fisher', "
                "'fisher', 'data', 0, '{}', 200, '000', 1, 2.5)",
                (f"2025-02-0{i + 1}T03:00:00.000+00:00", f"old-{i}"),
            )
    w = await _writer(config)
    await w.commit(call(at("2025-03-03", "10:00"), request_id="new"))
    await w.close()
    rows = sql(db, "SELECT request_id, seq, segment FROM audit_log ORDER BY seq")
    assert rows == [
        ("old-0", 1, "2025-02-01"),
        ("old-1", 2, "2025-02-02"),
        ("old-2", 3, "2025-02-03"),
        ("new", 4, "2025-03-03"),
    ]
    assert sql(db, "SELECT value FROM audit_meta WHERE key = 'schema_version'") == [("2",)]
    assert cli("audit", "seal", "-c", str(config), "--include-open")[0] == 0
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_concurrent_writers_and_sealers_never_cry_wolf(tmp_path: Path) -> None:
    """Three writers on one chain, each sealing every 20 ms while days of records pour in."""
    config = write_config(tmp_path, seal_interval=0.02, seal_grace=0)
    writers = [await _writer(config) for _ in range(3)]
    base = time.time() - 5 * 86400
    await asyncio.gather(
        *(
            write_calls(w, [call(base + i * 1200, pid=pid_for(i)) for i in range(300)], chunk=5)
            for w in writers
        )
    )
    for w in writers:
        await w.close()
    assert [w.seal.error for w in writers] == [None, None, None]
    assert sum(w.seal.sealed_total for w in writers) >= 3
    assert cli("audit", "seal", "-c", str(config), "--include-open")[0] == 0
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 0, out


async def test_sealing_a_big_day_keeps_one_page_of_records_in_memory(tmp_path: Path) -> None:
    """The sealer checks a clean segment in one pass that keeps nothing per record.

    Holding every record of a day (~0.5 KB each) took a busy gateway past 350 MB at the
    midnight seal; a segment is now read again, whole, only to explain what is wrong.
    """
    config = write_config(tmp_path)
    w = await _writer(config, seal_seed=None)
    base = at("2025-03-03", "09:00")
    n = 30_000
    await write_calls(w, [call(base + i, pid=pid_for(i)) for i in range(n)], chunk=500)
    await write_calls(w, [call(base + 86_400, pid=pid_for(0))])  # the next day opens
    await w.close()

    s = settings(config)
    store = SqliteStore.open(tmp_path / "audit.sqlite")
    tracemalloc.start()
    try:
        run = seal_due(
            store,
            seed=s.audit.seal_seed or b"",
            segmenter=Segmenter(s.audit.seal_period, s.audit.timezone),
            grace=0,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert [seal.count for seal in run.sealed] == [n, 1] and not run.problems
    assert peak < 8_000_000, f"{peak:,} bytes at peak for {n:,} records"


@pytest.mark.parametrize("variable_limit", [None, 999])
def test_a_batch_goes_in_as_one_insert_per_chunk_and_chains_as_before(
    tmp_path: Path, variable_limit: int | None
) -> None:
    """Each statement step lets go of the GIL and takes it back, which stalls the event
    loop's thread: a batch of 150 records was 150 steps; it is one multi-row INSERT per
    chunk of 64 (fewer where SQLite binds at most 999 values, as before 3.32)."""
    config = write_config(tmp_path)
    s = settings(config)
    path = tmp_path / "audit.sqlite"
    SqliteStore.open(path, create=True).close()
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    if variable_limit is not None:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
    store = SqliteStore(conn, path)
    seg = Segmenter(s.audit.seal_period, s.audit.timezone)
    chain = s.audit.instance
    store.prepare(key_fingerprint(s.audit.key), chain, seg)
    base = at("2025-03-03", "09:00")
    fisher = s.services["fisher"]
    calls = [call(base + i, pid=pid_for(i)) for i in range(150)]
    items = [(content_from_call(c, fisher, s.audit.key), c.started) for c in calls]
    inserts: list[str] = []
    conn.set_trace_callback(
        lambda q: inserts.append(q) if q.startswith("INSERT INTO audit_log") else None
    )
    head = store.append(lambda: items, lambda: True, chain, seg)
    store.close()
    assert head is not None and head.seq == 150
    assert len(inserts) == (3 if variable_limit is None else 4)  # 64+64+22; 38 a statement
    assert _seqs(path) == list(range(1, 151))
    assert cli("audit", "seal", "-c", str(config), "--include-open")[0] == 0
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 0, out


def _spill_probe(tmp: str, writer: str) -> None:
    """In a process of its own (SQLite reads SQLITE_TMPDIR once, when it starts): 1,000
    records, then three batches of 64; prints whether a temporary file was made meanwhile."""
    tmp_path, scratch = Path(tmp), Path(tmp) / "sqlite-tmp"
    s = settings(write_config(tmp_path))
    seg = Segmenter(s.audit.seal_period, s.audit.timezone)
    fisher, chain, base = s.services["fisher"], s.audit.instance, at("2025-03-03", "09:00")

    def batch(start: int, n: int = 64) -> list[tuple[Content, float]]:
        calls = [call(base + start + i, pid=pid_for(start + i)) for i in range(n)]
        return [(content_from_call(c, fisher, s.audit.key), c.started) for c in calls]

    db = tmp_path / f"{writer}.sqlite"
    key = key_fingerprint(s.audit.key)
    if writer == "writer":
        store = SqliteWriterStore(db, "full", chain, seg)
        store.open(key)
    else:  # the same statements on a connection as SQLite sets it up
        SqliteStore.open(db, create=True).close()
        plain = SqliteStore.open(db)
        plain.prepare(key, chain, seg)

    def append(start: int, n: int) -> None:
        if writer == "writer":
            store.append(lambda: batch(start, n), lambda: True)
        else:
            plain.append(lambda: batch(start, n), lambda: True, chain, seg)

    append(0, 1000)
    os.utime(scratch, ns=(0, 0))  # a file made and unlinked in it moves its mtime on
    for n in range(3):
        append(1000 + 64 * n, 64)
    print("spilled" if scratch.stat().st_mtime_ns != 0 else "kept", _seqs(db)[-1])


@pytest.mark.parametrize(("writer", "expected"), [("writer", "kept"), ("plain", "spilled")])
def test_the_writer_keeps_a_batchs_statement_journal_off_the_disk(
    tmp_path: Path, writer: str, expected: str
) -> None:
    """A multi-row INSERT may fail part way, so SQLite journals the statement; past 64 KiB
    that journal spilled to a temporary file, created, unlinked and written on disk for
    every batch under load. The writer's connection keeps it in memory. The same
    statements on a plain connection do spill here, so the check can see a spill."""
    (tmp_path / "sqlite-tmp").mkdir()
    probe = "import sys; from tests.test_audit_writer import _spill_probe as p; p(*sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), writer],
        env={**os.environ, "SQLITE_TMPDIR": str(tmp_path / "sqlite-tmp")},
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "1192"]


def test_subject_hash_is_hmac_sha256_of_the_citizen_id() -> None:
    # Known answers: records written years ago are found by this hash, so it never changes.
    assert subject_hash(b"k" * 32, "1101700203450") == (
        "ef409a676a9c4d9a8a5dbf7616d0848a2689729a2c01eecf33d2d1aa1ace0d97"
    )
    assert subject_hash(b"other key", "1101700203450") == (
        "918e79b8ac52421d4796be0078b76fc719b5055e5bae1c14925a4e2ef7c27d11"
    )
    assert subject_hash(b"k" * 32, "1101700203450") == subject_hash(b"k" * 32, "1101700203450")
