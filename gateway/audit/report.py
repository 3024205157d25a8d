"""The monthly usage report: what the paper logbook summary was, computed from the trail.

Per office, officer and service: calls, production and sandbox calls,
errors, distinct citizens.  Then the anomalies the head of unit must review,
each with the request ids to look up:

off_hours          production calls outside office hours, on a weekend or on a
                   public holiday (gateway.audit.calendar; one item per
                   officer and day)
volume             an officer's day far above the officer's *own* baseline (the
                   median of their other active days, in the month and the
                   ``baseline_days`` before it)
citizen_burst      many distinct citizens looked up by one officer within a
                   short window (``burst_citizens`` within ``burst_window``)
repeated_citizen   one citizen looked up ``repeat_lookups`` times or more by
                   one officer on one day
no_grant           calls refused because the office (or service) has no grant,
                   and calls served to an office the current config no longer grants

Everything is computed in one pass over the month (time order) and one over
the baseline period, so memory follows the number of officers and citizens,
not of calls.  Citizens appear only by their masked hint and hash prefix.
"""

from __future__ import annotations

import collections
import datetime as dt
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from gateway.audit.calendar import month_calendar
from gateway.audit.config import ReportSettings
from gateway.audit.search import Filter, month_bounds

__all__ = ["Anomaly", "ConsumerGrant", "MonthlyReport", "UsageRow", "build_monthly"]

_COLUMNS = (
    "ts",
    "request_id",
    "office",
    "officer",
    "consumer",
    "service",
    "kind",
    "sandbox",
    "subject_hash",
    "subject_hint",
    "status",
    "code",
    "error",
)
KINDS = ("off_hours", "volume", "citizen_burst", "repeated_citizen", "no_grant")
_EVIDENCE = 5  # request ids kept per anomaly


class ConsumerGrant(Protocol):
    def may_act_for(self, office: str) -> bool: ...


class RowSource(Protocol):
    def __call__(self, flt: Filter, columns: tuple[str, ...]) -> Iterable[Mapping[str, Any]]: ...


@dataclass(slots=True)
class UsageRow:
    office: str
    officer: str
    service: str
    calls: int = 0
    production: int = 0
    sandbox: int = 0
    errors: int = 0
    citizens: int = 0


@dataclass(slots=True)
class Anomaly:
    kind: str
    day: dt.date
    office: str
    officer: str
    count: int
    detail: str
    start: str = ""  # local HH:MM
    end: str = ""
    service: str = ""
    request_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MonthlyReport:
    month: str
    first_day: dt.date
    last_day: dt.date
    timezone: str
    settings: ReportSettings
    usage: list[UsageRow]  # per office, officer and service
    by_office: list[UsageRow]
    by_officer: list[UsageRow]  # per office and officer
    anomalies: list[Anomaly]
    per_day: dict[dt.date, tuple[int, int]]  # production, sandbox
    per_service: dict[str, int]
    per_hour: list[int]  # production calls by local hour
    totals: dict[str, int]
    holidays: dict[dt.date, str]  # the month's public and special holidays
    calendar_warnings: list[str]  # what the holiday calendar does not cover
    integrity: list[str] = field(default_factory=list)


def _hhmm(t: dt.datetime) -> str:
    return t.strftime("%H:%M")


def _why_off_hours(t: dt.datetime, cfg: ReportSettings, holidays: Mapping[dt.date, str]) -> str:
    day = t.date()
    if day in holidays:
        return f"public holiday ({holidays[day]})"
    if t.isoweekday() not in cfg.weekdays:
        return "weekend" if t.isoweekday() in (6, 7) else "not a working day"
    minute = t.hour * 60 + t.minute
    early, late = cfg.office_start - cfg.grace_minutes, cfg.office_end + cfg.grace_minutes
    if minute < early or minute >= late:
        return "outside office hours"
    return ""


@dataclass(slots=True)
class _Burst:
    start: float
    end: float
    peak: int
    calls: int
    office: str
    rids: list[str]


class _Pass:
    """State of the pass over one month."""

    def __init__(
        self,
        cfg: ReportSettings,
        tz: ZoneInfo,
        grants: Mapping[str, ConsumerGrant],
        holidays: Mapping[dt.date, str],
    ):
        self.cfg, self.tz, self.grants = cfg, tz, grants
        self.holidays = holidays
        self.usage: dict[tuple[str, str, str], UsageRow] = {}
        self.citizens: dict[tuple[str, str, str], set[int]] = collections.defaultdict(set)
        self.per_day: dict[dt.date, list[int]] = collections.defaultdict(lambda: [0, 0])
        self.per_service: collections.Counter[str] = collections.Counter()
        self.per_hour = [0] * 24
        self.off: dict[tuple[str, dt.date], list[tuple[dt.datetime, str, str, str]]] = (
            collections.defaultdict(list)
        )
        self.daily: collections.Counter[tuple[str, dt.date]] = collections.Counter()
        self.office_of: dict[tuple[str, dt.date], str] = {}
        self.span: dict[tuple[str, dt.date], tuple[dt.datetime, dt.datetime]] = {}
        self.repeat: dict[tuple[str, dt.date, str], list[str]] = collections.defaultdict(list)
        self.hints: dict[str, str] = {}
        self.window: dict[str, collections.deque[tuple[float, str, str]]] = collections.defaultdict(
            collections.deque
        )
        self.in_window: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.bursts: dict[str, list[_Burst]] = collections.defaultdict(list)
        self.refused: dict[tuple[str, str, str, str], list[str]] = collections.defaultdict(list)
        self.refused_on: dict[tuple[str, str, str, str], dt.date] = {}
        self.all_citizens: set[int] = set()
        self.totals: collections.Counter[str] = collections.Counter()

    def add(self, r: Mapping[str, Any]) -> None:
        if r["kind"] == "reload":  # a config change, not a call
            return
        t = dt.datetime.fromisoformat(str(r["ts"])).astimezone(self.tz)
        day = t.date()
        office, officer, service = r["office"] or "-", r["officer"] or "-", r["service"] or "-"
        sandbox = bool(r["sandbox"])
        status, rid, subject = int(r["status"]), str(r["request_id"]), r["subject_hash"]
        cited = int(str(subject)[:16], 16) if subject and not sandbox else None  # 64 bits
        for key in ((office, officer, service), (office, officer, "*"), (office, "*", "*")):
            u = self.usage.get(key)
            if u is None:
                u = self.usage[key] = UsageRow(*key)
            u.calls += 1
            u.errors += status >= 400
            u.sandbox += sandbox
            u.production += not sandbox
            if cited is not None:
                self.citizens[key].add(cited)
        self.totals["calls"] += 1
        self.totals["errors"] += status >= 400
        if sandbox:
            self.totals["sandbox"] += 1
            self.per_day[day][1] += 1
        else:
            self.totals["production"] += 1
            self.per_day[day][0] += 1
            self.per_hour[t.hour] += 1
            self.per_service[service] += 1
            if cited is not None:
                self.all_citizens.add(cited)
        if r["code"] == "202":
            self._refused((office, str(r["consumer"] or "-"), service, str(r["error"])), rid, day)
        elif (
            not sandbox
            and status < 400
            and r["consumer"] in self.grants
            and r["office"]
            and not self.grants[r["consumer"]].may_act_for(r["office"])
        ):
            why = f"served, but the current config grants {r['consumer']!r} no such office"
            self._refused((office, str(r["consumer"]), service, why), rid, day)
        if sandbox or officer == "-":
            return
        self.daily[(officer, day)] += 1
        self.office_of[(officer, day)] = office
        self.span[(officer, day)] = (self.span.get((officer, day), (t, t))[0], t)
        why = _why_off_hours(t, self.cfg, self.holidays)
        if why:
            self.off[(officer, day)].append((t, rid, office, why))
        if subject:
            subject = str(subject)
            self.repeat[(officer, day, subject)].append(rid)
            if r["subject_hint"]:
                self.hints[subject] = str(r["subject_hint"])
            self._burst(officer, office, t.timestamp(), subject, rid)

    def _refused(self, key: tuple[str, str, str, str], rid: str, day: dt.date) -> None:
        self.refused[key].append(rid)
        self.refused_on.setdefault(key, day)

    def _burst(self, officer: str, office: str, ts: float, subject: str, rid: str) -> None:
        dq, counts = self.window[officer], self.in_window[officer]
        dq.append((ts, subject, rid))
        counts[subject] += 1
        while dq and dq[0][0] <= ts - self.cfg.burst_window:
            _, old, _ = dq.popleft()
            counts[old] -= 1
            if not counts[old]:
                del counts[old]
        if len(counts) < self.cfg.burst_citizens:
            return
        eps = self.bursts[officer]
        if eps and eps[-1].end > ts - self.cfg.burst_window:
            ep = eps[-1]
            ep.end, ep.peak, ep.calls = ts, max(ep.peak, len(counts)), ep.calls + 1
        else:
            rids = [x[2] for x in list(dq)[:_EVIDENCE]]
            eps.append(_Burst(dq[0][0], ts, len(counts), len(dq), office, rids))


def _volume(
    p: _Pass, baseline: Mapping[tuple[str, dt.date], int], first: dt.date, last: dt.date
) -> list[Anomaly]:
    cfg = p.cfg
    by_officer: dict[str, dict[dt.date, int]] = collections.defaultdict(dict)
    for (officer, day), n in [*baseline.items(), *p.daily.items()]:
        by_officer[officer][day] = n
    out: list[Anomaly] = []
    for (officer, day), n in sorted(p.daily.items()):
        if not first <= day <= last or n < cfg.volume_min_calls:
            continue
        others = [c for d, c in by_officer[officer].items() if d != day]
        if len(others) < cfg.baseline_min_days:
            continue
        base = statistics.median(others)
        if n >= cfg.volume_factor * base:
            first_t, last_t = p.span[(officer, day)]
            out.append(
                Anomaly(
                    "volume",
                    day,
                    p.office_of[(officer, day)],
                    officer,
                    n,
                    f"{n} calls; this officer's usual day is {base:g} "
                    f"(median of {len(others)} active days); list them with `lc2-gateway audit "
                    f"search --officer {officer} --from {day} --to {day}`",
                    _hhmm(first_t),
                    _hhmm(last_t),
                )
            )
    return out


def _anomalies(
    p: _Pass, baseline: Mapping[tuple[str, dt.date], int], first: dt.date, last: dt.date
) -> list[Anomaly]:
    out: list[Anomaly] = []
    for (officer, day), calls in sorted(p.off.items()):
        reasons = sorted({c[3] for c in calls})
        out.append(
            Anomaly(
                "off_hours",
                day,
                calls[0][2],
                officer,
                len(calls),
                f"{len(calls)} calls on {day:%a %Y-%m-%d}: {', '.join(reasons)}",
                _hhmm(calls[0][0]),
                _hhmm(calls[-1][0]),
                request_ids=[c[1] for c in calls[:_EVIDENCE]],
            )
        )
    out.extend(_volume(p, baseline, first, last))
    for officer, eps in sorted(p.bursts.items()):
        for ep in eps:
            start = dt.datetime.fromtimestamp(ep.start, p.tz)
            end = dt.datetime.fromtimestamp(ep.end, p.tz)
            minutes = p.cfg.burst_window / 60
            out.append(
                Anomaly(
                    "citizen_burst",
                    start.date(),
                    ep.office,
                    officer,
                    ep.peak,
                    f"{ep.peak} distinct citizens within {minutes:g} minutes "
                    f"({_hhmm(start)}-{_hhmm(end)})",
                    _hhmm(start),
                    _hhmm(end),
                    request_ids=ep.rids,
                )
            )
    for (officer, day, subject), rids in sorted(p.repeat.items()):
        if len(rids) >= p.cfg.repeat_lookups:
            hint = p.hints.get(subject, "citizen")
            out.append(
                Anomaly(
                    "repeated_citizen",
                    day,
                    p.office_of[(officer, day)],
                    officer,
                    len(rids),
                    f"{hint} (#{subject[:8]}) looked up {len(rids)} times",
                    request_ids=rids[:_EVIDENCE],
                )
            )
    for key, rids in sorted(p.refused.items()):
        office, consumer, service, reason = key
        out.append(
            Anomaly(
                "no_grant",
                p.refused_on[key],
                office,
                "-",
                len(rids),
                f"{len(rids)} calls by consumer {consumer!r}: {reason}",
                service=service,
                request_ids=rids[:_EVIDENCE],
            )
        )
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda a: (order[a.kind], a.day, a.start, a.officer))


def build_monthly(
    source: RowSource,
    month: str,
    cfg: ReportSettings,
    timezone: str,
    grants: Mapping[str, ConsumerGrant],
) -> MonthlyReport:
    """``source(filter, columns)`` yields matching records in time order."""
    tz = ZoneInfo(timezone)
    since, until, first, last = month_bounds(month, tz)
    calendar = month_calendar(first, last, cfg.holidays, cfg.holiday_years)
    p = _Pass(cfg, tz, grants, calendar.days)
    for r in source(Filter(since=since, until=until), _COLUMNS):
        p.add(r)
    start = dt.datetime.combine(first - dt.timedelta(days=cfg.baseline_days), dt.time(), tz)
    base_since = start.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    baseline: collections.Counter[tuple[str, dt.date]] = collections.Counter()
    for r in source(Filter(since=base_since, until=since, include_sandbox=False), _COLUMNS):
        if r["officer"]:
            day = dt.datetime.fromisoformat(str(r["ts"])).astimezone(tz).date()
            baseline[(str(r["officer"]), day)] += 1
    rows = sorted(p.usage.values(), key=lambda u: (u.office, u.officer, u.service))
    for u in rows:
        u.citizens = len(p.citizens.get((u.office, u.officer, u.service), ()))
    usage = [u for u in rows if u.service != "*"]
    days = {first + dt.timedelta(days=i): (0, 0) for i in range((last - first).days + 1)}
    days.update({d: (v[0], v[1]) for d, v in p.per_day.items()})
    totals = dict(p.totals)
    totals["citizens"] = len(p.all_citizens)
    totals["offices"] = len({u.office for u in usage})
    totals["officers"] = len({u.officer for u in usage if u.officer != "-"})
    return MonthlyReport(
        month=month,
        first_day=first,
        last_day=last,
        timezone=timezone,
        settings=cfg,
        usage=usage,
        by_office=[u for u in rows if u.officer == "*"],
        by_officer=[u for u in rows if u.service == "*" and u.officer != "*"],
        anomalies=_anomalies(p, baseline, first, last),
        per_day=dict(sorted(days.items())),
        per_service=dict(p.per_service.most_common()),
        per_hour=p.per_hour,
        totals=totals,
        holidays=calendar.days,
        calendar_warnings=calendar.warnings,
    )
