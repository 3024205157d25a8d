"""The quota store on one machine: which rules count a call, the sweep of windows long over,
reloaded rules and zone, a broken file, closing; and, on the shared store, which rule refused."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from gateway.audit.config import PgAuditSettings
from gateway.config.models import LimitsConfig, QuotaRule
from gateway.errors import QuotaExceeded
from gateway.quota import QuotaStore
from gateway.sharedstate import SharedState
from tests.conftest import PgServer


def _limits(tmp_path: Path, *rules: QuotaRule, tz: str = "Asia/Bangkok") -> LimitsConfig:
    return LimitsConfig(quotas=list(rules), store=tmp_path / "quota.sqlite", timezone=tz)


def _windows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(r[0] for r in db.execute("SELECT window FROM quota_counter"))


async def test_a_rule_counts_only_the_services_it_names(tmp_path: Path) -> None:
    rule = QuotaRule(name="fisher", scope="officer", per="day", limit=1, services=["fisher"])
    store = QuotaStore(_limits(tmp_path, rule))
    await store.open()
    try:
        for _ in range(3):
            await store.check("farm", False, {"officer": "o1"})  # another service: not counted
        await store.check("fisher", False, {"officer": "o1"})
        with pytest.raises(QuotaExceeded):
            await store.check("fisher", False, {"officer": "o1"})
    finally:
        await store.close()


async def test_windows_over_for_more_than_three_days_are_swept_at_start(tmp_path: Path) -> None:
    rule = QuotaRule(name="daily", scope="officer", per="day", limit=5)
    store = QuotaStore(_limits(tmp_path, rule))
    await store.open()
    await store.check("svc", False, {"officer": "o1"})
    await store.close()
    now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7)))
    kept = (now - dt.timedelta(days=2, hours=12)).isoformat()
    gone = (now - dt.timedelta(days=3, hours=12)).isoformat()
    with sqlite3.connect(tmp_path / "quota.sqlite") as db:
        rows = [(w, *r) for w in (kept, gone) for r in db.execute("SELECT * FROM quota_counter")]
        cols = [c[1] for c in db.execute("PRAGMA table_info(quota_counter)")]
        win = cols.index("window") + 1
        for w, *row in rows:
            row[win - 1] = w
            db.execute(f"INSERT INTO quota_counter VALUES ({','.join('?' * len(row))})", row)
    assert kept in _windows(tmp_path / "quota.sqlite")
    store = QuotaStore(_limits(tmp_path, rule))
    await store.open()
    await store.close()
    left = _windows(tmp_path / "quota.sqlite")
    assert kept in left and gone not in left


async def test_reloaded_rules_count_in_the_new_time_zone(tmp_path: Path) -> None:
    rule = QuotaRule(name="daily", scope="officer", per="day", limit=5)
    store = QuotaStore(_limits(tmp_path, rule))
    await store.open()
    try:
        store.configure(_limits(tmp_path, rule, tz="UTC"))
        await store.check("svc", False, {"officer": "o1"})
    finally:
        await store.close()
    assert [w[-6:] for w in _windows(tmp_path / "quota.sqlite")] == ["+00:00"]


async def test_a_broken_store_lets_the_call_through_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rule = QuotaRule(name="daily", scope="officer", per="day", limit=1)
    store = QuotaStore(_limits(tmp_path, rule))
    await store.open()
    try:
        with sqlite3.connect(tmp_path / "quota.sqlite") as db:
            db.execute("DROP TABLE quota_counter")
        with caplog.at_level(logging.ERROR, logger="lc2_gateway"):
            await store.check("svc", False, {"officer": "o1"})
            await store.check("svc", False, {"officer": "o1"})  # not counted, not refused
        assert any("quota store unusable" in r.getMessage() for r in caplog.records)
    finally:
        await store.close()


async def test_close_ends_the_store_thread(tmp_path: Path) -> None:
    def quota_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("quota")]

    before = quota_threads()
    store = QuotaStore(_limits(tmp_path, QuotaRule(name="d", scope="officer", per="day", limit=5)))
    await store.open()
    await store.check("svc", False, {"officer": "o1"})
    assert len(quota_threads()) > len(before)
    await store.close()
    assert quota_threads() == before


async def test_the_shared_store_names_the_rule_that_refused(
    tmp_path: Path, pg_server: PgServer
) -> None:
    schema = f"lc2_quota_rule_{uuid.uuid4().hex[:8]}"
    shared = SharedState(
        PgAuditSettings(pg_server.dsn, None, schema, 2, 2.0, 2.0), fail_closed=True
    )
    roomy = QuotaRule(name="roomy", scope="officer", per="day", limit=100)
    tight = QuotaRule(name="tight", scope="officer", per="day", limit=1)
    third = QuotaRule(name="third", scope="office", per="day", limit=100)
    store = QuotaStore(_limits(tmp_path, roomy, tight, third), shared)
    await store.open()
    try:
        subjects = {"officer": "o1", "office": "00023"}
        await store.check("svc", False, subjects)
        with pytest.raises(QuotaExceeded) as refused:
            await store.check("svc", False, subjects)
        assert "quota 'tight'" in str(refused.value.detail)
    finally:
        await store.close()
        await shared.run(lambda c: c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await shared.close()
