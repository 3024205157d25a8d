"""`audit verify` on a store the gateway is writing: exact, never a false alarm.

A real ``lc2-gateway serve`` answers calls from a few client threads on
loopback while ``audit verify`` runs again and again beside it.  Every run
must find the store intact (exit 0, or 3 for "not sealed yet"): records,
chain head and seals are read in one snapshot, so records appended while a
run reads are simply not yet part of what it checks.  Tampering done during
the same load (a record deleted, one rewritten) must still be found.

Bounded: 25 runs a second apart; the load stops itself after 45 s at most.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.audit_support import Calls, PgRun, Served, cli, serving_config
from tests.conftest import PgServer

RUNS = 25  # verify runs under load, one started every PACE seconds
PACE = 1.0
LOAD_SECONDS = 45.0  # the most the load lasts, whatever the machine's speed
CLIENTS = 6

Tamper = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def _verify(config: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("audit", "verify", "-c", str(config), "--json")
    assert out, err
    return code, json.loads(out)


def _verify_under_load(config: Path, port: int, tamper: Tamper) -> None:
    codes: list[int] = []
    alarms: list[Any] = []
    with Calls(port, clients=CLIENTS, limit=LOAD_SECONDS) as load:
        time.sleep(0.5)  # some records first
        while len(codes) < RUNS and load.running():
            start = time.monotonic()
            code, body = _verify(config)
            codes.append(code)
            if code not in (0, 3):
                alarms.append(body["findings"])
            time.sleep(max(0.0, start + PACE - time.monotonic()))
        assert load.running(), "the load ended before the tampering could be made under it"
        # Tampering while the calls go on: a record deleted, another rewritten.
        tamper("DELETE FROM audit_log WHERE chain = 'gw1' AND seq = 5", ())
        tamper("UPDATE audit_log SET office = '00999' WHERE chain = 'gw1' AND seq = 9", ())
        code, body = _verify(config)
        answered = load.since(0)
    records = sum(c["records"] for c in body["chains"].values())
    print(f"verify under load: {len(codes)} runs, {records} records, {len(alarms)} false alarms")
    assert not alarms, alarms
    assert len(codes) >= 10, f"only {len(codes)} verify runs within {LOAD_SECONDS:g}s"
    assert answered.count(200) > 100, sorted(set(answered))
    assert code == 1
    found = {(f["kind"], f.get("seq")) for f in body["findings"] if f["severity"] == "error"}
    kinds = {k for k, _ in found}
    assert "deleted" in kinds, body["findings"]
    assert ("modified", 9) in found, body["findings"]
    assert any(
        f["kind"] == "deleted" and re.search(r"\bseq 4\b", f["message"]) for f in body["findings"]
    ), body["findings"]


@contextlib.contextmanager
def _served(tmp_path: Path, **audit: Any) -> Iterator[tuple[Path, int]]:
    config, port, admin = serving_config(
        tmp_path, seal_key_file=str(tmp_path / "seal.key"), seal_interval=1, **audit
    )
    served = Served(config, admin)
    try:
        served.wait_ready()
        yield config, port
    finally:
        assert served.stop() == 0, served.output()


def test_verify_is_exact_on_a_busy_sqlite_store(tmp_path: Path) -> None:
    store = tmp_path / "audit.sqlite"

    def tamper(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(store, timeout=10)) as db, db:
            return [tuple(r) for r in db.execute(statement, tuple(params)).fetchall()]

    with _served(tmp_path) as (config, port):
        _verify_under_load(config, port, tamper)


def test_verify_is_exact_on_a_busy_postgresql_store(tmp_path: Path, pg_server: PgServer) -> None:
    schema = f"audit_{uuid.uuid4().hex[:10]}"

    tamper = PgRun(pg_server.dsn, schema)

    with _served(
        tmp_path, store="postgresql", postgresql={"dsn": pg_server.dsn, "schema": schema}
    ) as (config, port):
        _verify_under_load(config, port, tamper)
