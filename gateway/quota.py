"""Quotas and rate limits per officer, office or consumer, shared by all workers.

Counters are fixed windows (second, minute, hour, or a day that starts at
midnight in the configured time zone, as officers count their day) kept in
a small SQLite file.  One transaction checks every rule that applies and
counts the call only if all pass, so a refused call uses up nothing.
SQLite serialises writers across processes, which is what makes the
counters right when several workers serve one port, and keeps them across
reloads and restarts.  Nothing here runs when no rule is configured.

The file and its thread are a :class:`~gateway.statefile.StateFile`, which
the failed-sign-in counts share.  A fleet of gateways counts in the shared
PostgreSQL store instead (:class:`~gateway.sharedstate.SharedState`, one
round trip a call), with the operator's choice of what happens while it is
unreachable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from zoneinfo import ZoneInfo

from gateway.config.models import LimitsConfig, QuotaRule
from gateway.errors import QuotaExceeded, StateUnavailable
from gateway.sharedstate import SharedState, StoreUnreachable
from gateway.statefile import StateFile

__all__ = ["QuotaStore", "window"]

log = logging.getLogger("lc2_gateway.quota")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_counter (
    rule    TEXT NOT NULL,
    subject TEXT NOT NULL,
    window  TEXT NOT NULL,
    calls   INTEGER NOT NULL,
    PRIMARY KEY (rule, subject, window)
) WITHOUT ROWID;
"""
_UNITS = {
    "second": dt.timedelta(seconds=1),
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
}


def window(per: str, now: dt.datetime) -> tuple[str, float]:
    """The window ``now`` falls in, as (key, seconds until it ends)."""
    if per == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elif per == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
    elif per == "minute":
        start = now.replace(second=0, microsecond=0)
    else:
        start = now.replace(microsecond=0)
    end = start + _UNITS[per]
    return start.isoformat(), (end - now).total_seconds()


class QuotaStore:
    def __init__(self, cfg: LimitsConfig, shared: SharedState | None = None) -> None:
        self._cfg = cfg
        self._tz = ZoneInfo(cfg.timezone)
        self._file = StateFile(cfg.store, "quota")
        self._shared = shared

    @property
    def active(self) -> bool:
        return bool(self._cfg.quotas)

    def configure(self, cfg: LimitsConfig) -> None:
        """New rules from a reload; counters are kept (same store)."""
        self._cfg = cfg.model_copy(update={"store": self._cfg.store})
        self._tz = ZoneInfo(cfg.timezone)

    async def open(self) -> None:
        # Opened even without rules, so a reload that adds rules finds it ready.
        await self._file.open(self._setup)
        if self._shared is not None:
            with contextlib.suppress(StoreUnreachable):  # swept at the next start then
                await self._shared.sweep_quota(self._cutoff())

    def _cutoff(self) -> str:
        """Windows that began before this are over: their counters go at start-up."""
        return (dt.datetime.now(self._tz) - dt.timedelta(days=3)).isoformat()

    def _setup(self, db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        db.execute("DELETE FROM quota_counter WHERE window < ?", (self._cutoff(),))

    async def close(self) -> None:
        await self._file.close()

    async def check(self, service: str, sandbox: bool, subjects: dict[str, str]) -> None:
        """Count this call against every rule that applies, or raise QuotaExceeded."""
        rules = [
            r
            for r in self._cfg.quotas
            if (not sandbox or r.include_sandbox) and ("*" in r.services or service in r.services)
        ]
        if not rules:
            return
        now = dt.datetime.now(self._tz)
        if self._shared is not None:
            await self._check_shared(self._shared, rules, subjects, now)
            return
        try:
            file = self._file
            refused = await file.run(file.transaction, self._count, rules, subjects, now)
        except sqlite3.Error as exc:
            # Quotas protect legacy systems from overuse; they are not evidence. A broken
            # counter store must not stop LC2, so the call goes on and the fault is logged.
            log.error("quota store unusable, call not counted: %s", exc)
            return
        if refused is not None:
            rule, retry_after = refused
            raise QuotaExceeded(rule.name, rule.limit, rule.per, rule.scope, retry_after)

    @staticmethod
    async def _check_shared(
        shared: SharedState, rules: list[QuotaRule], subjects: dict[str, str], now: dt.datetime
    ) -> None:
        windows = [window(r.per, now) for r in rules]
        keys = [
            (r.name, subjects.get(r.scope, ""), key, r.limit)
            for r, (key, _) in zip(rules, windows, strict=True)
        ]
        try:
            refused = await shared.quota_take(keys)
        except StoreUnreachable as exc:
            if shared.fail_closed:
                raise StateUnavailable("the shared quota store is unreachable") from exc
            shared.uncounted += 1
            return
        if refused:
            rule, (_, left) = rules[refused - 1], windows[refused - 1]
            raise QuotaExceeded(rule.name, rule.limit, rule.per, rule.scope, left)

    @staticmethod
    def _count(
        db: sqlite3.Connection, rules: list[QuotaRule], subjects: dict[str, str], now: dt.datetime
    ) -> tuple[QuotaRule, float] | None:
        keys = []
        for rule in rules:  # every rule is checked before any is counted: a refusal uses nothing
            key, left = window(rule.per, now)
            subject = subjects.get(rule.scope, "")
            row = db.execute(
                "SELECT calls FROM quota_counter WHERE rule=? AND subject=? AND window=?",
                (rule.name, subject, key),
            ).fetchone()
            if row is not None and row[0] >= rule.limit:
                return rule, left
            keys.append((rule.name, subject, key))
        for key3 in keys:
            db.execute(
                "INSERT INTO quota_counter VALUES (?, ?, ?, 1) ON CONFLICT "
                "(rule, subject, window) DO UPDATE SET calls = calls + 1",
                key3,
            )
        return None
