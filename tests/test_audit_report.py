"""The monthly report from two months of realistic synthetic traffic with planted anomalies.

September is the baseline; October is reported.  Ordinary traffic: twelve
officers in three granted offices, each with a usual daily volume, calls
between 08:45 and 16:15 on working days (Thai holidays from the shipped
calendar excluded), citizens drawn from a large pool, a few errors and
sandbox calls.  Planted in October, one of each kind the report must flag.
The test asserts both directions: every planted anomaly is flagged, and
nothing else is.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from gateway.audit import AuditWriter
from gateway.audit.calendar import month_calendar
from gateway.audit.config import load_calendar
from gateway.audit.report import MonthlyReport, build_monthly
from gateway.audit.search import rows
from gateway.audit.store_sqlite import SqliteStore
from gateway.observe import CallRecord
from tests.audit_support import (
    at,
    call,
    cli,
    pid_for,
    running_smtp,
    settings,
    write_calls,
    write_config,
)
from tests.support import make_pid

ROOT = Path(__file__).resolve().parent.parent
HOLIDAYS = ROOT / "config" / "holidays-th-2026.yaml"
OFFICES = ("00023", "00101", "00245")
OFFICERS = [make_pid(f"1{n:011d}") for n in range(101, 113)]
USUAL = [14, 18, 22, 25, 30, 26, 20, 16, 28, 24, 19, 21]  # calls on a usual day
SERVICES = ("fisher", "fisher", "fisher", "vessel", "vessel", "farm")
NO_GRANT_OFFICER = make_pid("110200000077")


def _working_days(first: str, last: str) -> list[dt.date]:
    d, end, out = dt.date.fromisoformat(first), dt.date.fromisoformat(last), []
    overlay, years = load_calendar(HOLIDAYS)
    holidays = month_calendar(d, end, overlay.items(), years).days
    while d <= end:
        if d.isoweekday() <= 5 and d not in holidays:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _ordinary(rng: random.Random) -> list[CallRecord]:
    calls: list[CallRecord] = []
    for day in _working_days("2026-09-01", "2026-10-31"):
        for i, officer in enumerate(OFFICERS):
            usual = USUAL[i]
            for _ in range(rng.randint(int(usual * 0.6), int(usual * 1.4))):
                minute = rng.randint(8 * 60 + 45, 16 * 60 + 15)
                ts = at(
                    day.isoformat(), f"{minute // 60:02d}:{minute % 60:02d}", rng.randint(0, 59)
                )
                roll = rng.random()
                status, code = (
                    (200, "000")
                    if roll < 0.94
                    else (400, "104")
                    if roll < 0.98
                    else (
                        503,
                        "301",
                    )
                )
                calls.append(
                    call(
                        ts,
                        pid=pid_for(rng.randint(1, 40_000)),
                        officer=officer,
                        office=OFFICES[i % 3],
                        service=rng.choice(SERVICES),
                        status=status,
                        code=code,
                        sandbox=rng.random() < 0.05,
                    )
                )
    return calls


PLANTED = {
    ("off_hours", OFFICERS[0], "2026-10-07"),  # a Wednesday evening
    ("off_hours", OFFICERS[1], "2026-10-13"),  # King Bhumibol Memorial Day
    ("off_hours", OFFICERS[2], "2026-10-17"),  # a Saturday
    ("volume", OFFICERS[3], "2026-10-20"),
    ("citizen_burst", OFFICERS[4], "2026-10-22"),
    ("repeated_citizen", OFFICERS[5], "2026-10-15"),
    ("no_grant", "00999", "2026-10-09"),
}


def _planted(rng: random.Random) -> list[CallRecord]:
    c: list[CallRecord] = []
    c += [
        call(
            at("2026-10-07", "20:10") + k * 360,
            pid=pid_for(50_000 + k),
            officer=OFFICERS[0],
            office=OFFICES[0],
        )
        for k in range(6)
    ]
    c += [
        call(
            at("2026-10-13", "10:00") + k * 600,
            pid=pid_for(50_100 + k),
            officer=OFFICERS[1],
            office=OFFICES[1],
        )
        for k in range(5)
    ]
    c += [
        call(
            at("2026-10-17", "11:00") + k * 900,
            pid=pid_for(50_200 + k),
            officer=OFFICERS[2],
            office=OFFICES[2],
        )
        for k in range(3)
    ]
    c += [
        call(
            at("2026-10-20", "08:45") + k * 175,
            pid=pid_for(60_000 + k),
            officer=OFFICERS[3],
            office=OFFICES[0],
            service=rng.choice(SERVICES),
        )
        for k in range(150)
    ]
    c += [
        call(
            at("2026-10-22", "14:00") + k * 10,
            pid=pid_for(70_000 + k),
            officer=OFFICERS[4],
            office=OFFICES[1],
        )
        for k in range(35)
    ]
    c += [
        call(
            at("2026-10-15", "09:00") + k * 3000,
            pid=pid_for(80_000),
            officer=OFFICERS[5],
            office=OFFICES[2],
        )
        for k in range(7)
    ]
    c += [
        call(
            at("2026-10-09", "10:30") + k * 60,
            pid=pid_for(90_000 + k),
            officer=NO_GRANT_OFFICER,
            office="00999",
            status=403,
            code="202",
            error="consumer 'lc2' may not act for office 00999",
        )
        for k in range(4)
    ]
    return c


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    tmp = tmp_path_factory.mktemp("report")
    config = write_config(tmp, seal_interval=3600, report={"holidays": [str(HOLIDAYS)]})
    rng = random.Random(2569)
    traffic = sorted(_ordinary(rng) + _planted(rng), key=lambda r: r.started)

    async def fill() -> None:
        s = settings(config)
        w = AuditWriter(s.audit, s.services)
        await w.start()
        await write_calls(w, traffic, chunk=500)
        await w.seal_now()
        await w.close()

    asyncio.run(fill())
    return config


def _report(config: Path, month: str) -> MonthlyReport:
    s = settings(config)
    assert s.audit.report is not None
    store = SqliteStore.open(s.audit.path)
    try:
        return build_monthly(
            lambda flt, cols: rows(store, flt, cols),
            month,
            s.audit.report,
            s.audit.timezone,
            s.consumers,
        )
    finally:
        store.close()


def _flagged(config: Path) -> set[tuple[str, str, str]]:
    report = _report(config, "2026-10")
    assert report.calendar_warnings == []  # the shipped calendar covers 2026
    return {
        (a.kind, a.office if a.kind == "no_grant" else a.officer, a.day.isoformat())
        for a in report.anomalies
    }


def test_planted_anomalies_are_flagged_and_ordinary_traffic_is_not(month: Path) -> None:
    flagged = _flagged(month)
    assert flagged - PLANTED == set(), "ordinary traffic flagged"
    assert PLANTED - flagged == set(), "planted anomalies missed"


def test_report_files_for_the_head_of_unit(month: Path, tmp_path: Path) -> None:
    code, _, err = cli(
        "report", "monthly", "-c", str(month), "--month", "2026-10", "--out-dir", str(tmp_path)
    )
    assert code == 0, err
    assert "7 anomalies to review" in err
    md = (tmp_path / "report-2026-10.md").read_text(encoding="utf-8")
    assert "รายงานการเข้าถึงข้อมูลประจำเดือนตุลาคม 2569" in md
    assert "Anomalies to review" in md and "วันนวมินทรมหาราช" in md
    assert "Audit trail verification when generated: intact and sealed" in md
    page = (tmp_path / "report-2026-10.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "<script" not in page.lower()
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        ElementTree.fromstring(svg)  # well-formed: renders in any browser or converter
    # self-contained: nothing fetched from elsewhere (the SVG namespace is only a name)
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert page.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    usage = list(csv.DictReader(io.StringIO((tmp_path / "report-2026-10.usage.csv").read_text())))
    october = [
        r for r in rows_of(month) if r["ts"] >= "2026-09-30T17:00" and r["ts"] < "2026-10-31T17:00"
    ]
    assert sum(int(u["calls"]) for u in usage) == len(october)
    assert sum(int(u["sandbox"]) for u in usage) == sum(1 for r in october if r["sandbox"])
    anomalies = list(
        csv.DictReader(io.StringIO((tmp_path / "report-2026-10.anomalies.csv").read_text()))
    )
    assert {a["kind"] for a in anomalies} == {k for k, _, _ in PLANTED}
    for text in (md, page):
        for officer in OFFICERS:
            assert officer in text  # officers act in office: named in the report


def rows_of(config: Path) -> list[dict[str, Any]]:
    from tests.audit_support import sql

    out = sql(config.parent / "audit.sqlite", "SELECT ts, sandbox FROM audit_log")
    return [{"ts": r[0], "sandbox": r[1]} for r in out]


def test_no_citizen_id_in_any_report_form(month: Path, tmp_path: Path) -> None:
    pid = pid_for(80_000)  # the citizen looked up seven times
    for fmt in ("md", "html", "csv", "anomalies-csv"):
        code, out, _ = cli(
            "report",
            "monthly",
            "-c",
            str(month),
            "--month",
            "2026-10",
            "--format",
            fmt,
            "--no-verify",
        )
        assert code == 0 and pid not in out
    assert f"{pid[0]}-xxxx-xxxxx-x{pid[11]}-{pid[12]}" in out  # the masked hint instead


def test_public_holidays_of_a_year_no_file_covers_and_a_warning(tmp_path: Path) -> None:
    import asyncio

    config = write_config(tmp_path, report={"holidays": [str(HOLIDAYS)]})
    officer = OFFICERS[0]
    traffic = [
        call(at("2027-01-01", "10:00", 0), pid=pid_for(1), officer=officer),  # New Year's Day
        call(at("2027-01-04", "10:00", 0), pid=pid_for(2), officer=officer),  # a Monday
    ]

    async def fill() -> None:
        s = settings(config)
        w = AuditWriter(s.audit, s.services)
        await w.start()
        await write_calls(w, traffic)
        await w.close()

    asyncio.run(fill())
    report = _report(config, "2027-01")
    assert report.holidays[dt.date(2027, 1, 1)] == "วันขึ้นปีใหม่"
    [off] = [a for a in report.anomalies if a.kind == "off_hours"]
    assert off.day == dt.date(2027, 1, 1) and "public holiday" in off.detail
    assert len(report.calendar_warnings) == 1 and "2027" in report.calendar_warnings[0]
    code, _, err = cli(
        "report", "monthly", "-c", str(config), "--month", "2027-01", "--out-dir", str(tmp_path)
    )
    assert code == 0, err
    for name in ("report-2027-01.md", "report-2027-01.html"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "no holiday calendar file covers 2027" in text


def test_the_previous_month_mailed_to_the_local_mail_system(
    month: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import email
    import email.policy

    from gateway.audit import cli_query

    class November(dt.datetime):  # the timer's run on the 1st, in Bangkok
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> November:
            return cls(2026, 11, 1, 7, 0, tzinfo=tz)

    monkeypatch.setattr(
        cli_query, "dt", type("dt", (), {"datetime": November, "timedelta": dt.timedelta})
    )
    monkeypatch.setenv("LC2_REPORT_MAIL_TO", "head-of-unit@example.go.th, pdpa@example.go.th")
    with running_smtp() as smtp:
        code, _, err = cli(
            "report", "monthly", "-c", str(month), "--month", "previous",
            "--out-dir", str(tmp_path), "--smtp", smtp.address, "--no-verify",
        )  # fmt: skip
        assert code == 0, err
        [raw] = smtp.messages
    assert "mailed to head-of-unit@example.go.th, pdpa@example.go.th" in err
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "head-of-unit@example.go.th, pdpa@example.go.th"
    assert "2026-10" in msg["Subject"] and "รายงาน" in msg["Subject"]
    body = msg.get_body(("plain",))
    assert body is not None and "รายงานการเข้าถึงข้อมูลประจำเดือนตุลาคม 2569" in body.get_content()
    names = sorted(str(a.get_filename()) for a in msg.iter_attachments())
    assert names == [
        "report-2026-10.anomalies.csv",
        "report-2026-10.html",
        "report-2026-10.usage.csv",
    ]
    assert (tmp_path / "report-2026-10.md").exists()  # the files stay in the directory too
