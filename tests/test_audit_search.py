"""`audit search`, `audit who-accessed` and `audit export` on a real store."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.audit import AuditWriter
from tests.audit_support import at, call, cli, pid_for, settings, write_calls, write_config

CITIZEN, OTHER = pid_for(1), pid_for(2)
O1, O2 = "1101700203450", "3100600123456"
DASHED = f"{CITIZEN[0]}-{CITIZEN[1:5]}-{CITIZEN[5:10]}-{CITIZEN[10:12]}-{CITIZEN[12]}"


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path, seal_interval=3600)
    s = settings(cfg)
    w = AuditWriter(replace(s.audit, seal_seed=None), s.services)  # segments as written
    await w.start()
    await write_calls(
        w,
        [
            call(at("2025-03-03", "10:00"), pid=CITIZEN, officer=O1, request_id="a1"),
            call(at("2025-03-03", "10:05"), pid=CITIZEN, officer=O1, sandbox=True, request_id="a2"),
            call(at("2025-03-03", "11:00"), pid=OTHER, officer=O1, request_id="b1"),
            call(at("2025-03-03", "23:30"), pid=OTHER, officer=O1, request_id="late"),
            call(at("2025-03-04", "00:10"), pid=OTHER, officer=O1, request_id="next-day"),
            call(
                at("2025-03-04", "14:00"),
                pid=CITIZEN,
                officer=O2,
                office="00999",
                status=403,
                code="202",
                error="consumer 'lc2' may not act for office 00999",
                request_id="a3",
            ),
            call(
                at("2025-03-05", "09:00"),
                pid=OTHER,
                officer=O2,
                office="00101",
                service="vessel",
                status=503,
                code="301",
                request_id="v1",
            ),
        ],
        chunk=1,
    )
    await w.close()
    return cfg


def _jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _ids(*argv: str) -> list[object]:
    code, out, err = cli(*argv, "--format", "jsonl")
    assert code == 0, err
    return [r["request_id"] for r in _jsonl(out)]


async def test_search_by_local_day_office_officer_service_and_status(config: Path) -> None:
    c = str(config)
    # a local date is the whole local day: 23:30 in, 00:10 next day out
    assert _ids("audit", "search", "-c", c, "--from", "2025-03-03", "--to", "2025-03-03") == [
        "a1",
        "a2",
        "b1",
        "late",
    ]
    assert _ids("audit", "search", "-c", c, "--office", "00999") == ["a3"]
    assert _ids("audit", "search", "-c", c, "--officer", "3-1006-00123-45-6") == ["a3", "v1"]
    assert _ids("audit", "search", "-c", c, "--service", "vessel") == ["v1"]
    assert _ids("audit", "search", "-c", c, "--status", "error") == ["a3", "v1"]
    assert _ids("audit", "search", "-c", c, "--status", "5xx") == ["v1"]
    assert _ids("audit", "search", "-c", c, "--kind", "sandbox") == ["a2"]
    assert _ids("audit", "search", "-c", c, "--kind", "health") == []  # every kind a record has
    assert _ids("audit", "search", "-c", c, "--from", "2025-03-04T14:00", "--limit", "1") == ["a3"]
    code, out, _ = cli("audit", "search", "-c", c, "--request-id", "a1")
    assert code == 0 and "2025-03-03 10:00:00" in out  # the table shows local time
    code, _, err = cli("audit", "search", "-c", c, "--from", "yesterday")
    assert code == 2 and "not a date" in err


async def test_who_accessed_answers_a_citizens_request_without_storing_the_id(
    config: Path,
) -> None:
    c = str(config)
    code, out, err = cli("audit", "who-accessed", DASHED, "-c", c, "--format", "jsonl")
    assert code == 0, err
    got = [(r["request_id"], r["office"], r["officer"], r["status"]) for r in _jsonl(out)]
    assert got == [("a1", "00023", O1, 200), ("a3", "00999", O2, 403)]
    assert CITIZEN not in out
    code, out, _ = cli(
        "audit", "who-accessed", CITIZEN, "-c", c, "--include-sandbox", "--format", "csv"
    )
    assert [r["request_id"] for r in csv.DictReader(io.StringIO(out))] == ["a1", "a2", "a3"]
    code, out, _ = cli("audit", "who-accessed", CITIZEN, "-c", c)
    assert "00999" in out and "2025-03-04 14:00:00" in out
    assert cli("audit", "who-accessed", "1234567890123", "-c", c)[0] == 2  # bad check digit
    raw = (config.parent / "audit.sqlite").read_bytes()
    assert CITIZEN.encode() not in raw and OTHER.encode() not in raw


async def test_who_accessed_refuses_a_key_the_store_was_not_written_with(
    config: Path, tmp_path: Path
) -> None:
    (tmp_path / "audit.key").write_text("f" * 64 + "\n", encoding="ascii")
    code, _, err = cli("audit", "who-accessed", CITIZEN, "-c", str(config))
    assert code == 1 and "not the key this store was written with" in err


async def test_export_a_month_as_csv_and_json_lines(config: Path, tmp_path: Path) -> None:
    c = str(config)
    target = tmp_path / "march.csv"
    code, _, err = cli("audit", "export", "-c", c, "--month", "2025-03", "-o", str(target))
    assert code == 0 and "7 record(s)" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["request_id"] for r in rows] == ["a1", "a2", "b1", "late", "next-day", "a3", "v1"]
    assert {"seq", "segment", "prev_hash", "row_hash", "subject_hash"} <= set(rows[0])
    assert CITIZEN.encode() not in target.read_bytes()
    code, out, _ = cli(
        "audit",
        "export",
        "-c",
        c,
        "--from",
        "2025-03-04",
        "--to",
        "2025-03-05",
        "--format",
        "jsonl",
    )
    assert [r["request_id"] for r in _jsonl(out)] == ["next-day", "a3", "v1"]
    assert cli("audit", "export", "-c", c)[0] == 2  # a period is required


async def test_paged_reads_return_every_record_once_in_order(config: Path) -> None:
    from gateway.audit.search import Filter, rows
    from gateway.audit.store_sqlite import SqliteStore

    store = SqliteStore.open(config.parent / "audit.sqlite")
    try:
        whole = [r["request_id"] for r in rows(store, Filter(), ("request_id",))]
        whole_seg = [r.id for r in store.segment_records("gw1", "2025-03-03")]
        store.page = 2  # every page boundary is crossed
        assert [r["request_id"] for r in rows(store, Filter(), ("request_id",))] == whole
        assert [r.id for r in store.segment_records("gw1", "2025-03-03")] == whole_seg
        assert len(whole) == 7 and len(whole_seg) == 4
        limited = [r["request_id"] for r in rows(store, Filter(), ("request_id",), limit=3)]
        assert limited == whole[:3]
    finally:
        store.close()


async def test_who_accessed_letter_for_the_citizen_renders_on_a4(
    config: Path, tmp_path: Path
) -> None:
    from tests.browser import assert_real_screenshot, chromium

    letter = tmp_path / "letter.html"
    code, _, err = cli(
        "audit", "who-accessed", DASHED, "-c", str(config), "--format", "letter",
        "--department", "กรมประมง Department of Fisheries", "-o", str(letter),
    )  # fmt: skip
    assert code == 0, err
    page = letter.read_text(encoding="utf-8")
    masked = f"{CITIZEN[0]}-xxxx-xxxxx-x{CITIZEN[11]}-{CITIZEN[12]}"
    for pid in (CITIZEN, DASHED, O1, O2):
        assert pid not in page  # the citizen and the officers only masked
    assert masked in page and f"{O1[0]}-xxxx-xxxxx-x{O1[11]}-{O1[12]}" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "@page { size: A4" in page

    shot, pdf = tmp_path / "letter.png", tmp_path / "letter.pdf"
    async with chromium(tmp_path) as browser:
        tab = await browser.new_page(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
        await tab.goto(letter.as_uri())
        text = await tab.inner_text("body")
        looked = await tab.locator("table.accesses").nth(0).locator("tbody tr").all_inner_texts()
        refused = await tab.locator("table.accesses").nth(1).locator("tbody tr").all_inner_texts()
        await tab.screenshot(path=str(shot))
        await tab.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
        await tab.close()
    assert "หนังสือแจ้งการเข้าถึงข้อมูลส่วนบุคคล" in text
    assert "Notice of access to your personal data" in text
    assert "กรมประมง Department of Fisheries" in text
    # the production look-up: when (Thai and ISO, local time), which office, service, officer
    [row] = looked
    assert "3 มีนาคม 2568 10:00 น." in row and "2025-03-03 10:00" in row
    assert "00023" in row and "fisher" in row and "lc2" in row
    # the sandbox call (a2) read no one's record; the refused call (a3) is listed apart
    [row] = refused
    assert "00999" in row and "2025-03-04 14:00" in row
    assert "พบการเรียกดูข้อมูลของท่าน 1 ครั้ง จาก 1 สำนักงาน" in text
    assert_real_screenshot(shot, (794, 1123))
    raw = pdf.read_bytes()
    assert raw.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", raw)
    assert boxes and all(
        abs(float(w) - 595.92) < 2 and abs(float(h) - 842.88) < 2 for w, h in boxes
    )
