"""A citizen's access report: the letter a PDPA officer hands to the citizen who asked.

``lc2-gateway audit who-accessed PID --format letter`` renders it: one
self-contained HTML page in Thai and English, laid out for A4 (print it, or
save it as PDF from a browser).  It says which offices looked at the
citizen's records through which service and when, and which attempts the
gateway refused.  Officers appear as the law asks, by office and a masked
ID; the citizen's own ID is masked too; request ids and the keyed hash stay
in the trail.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit.report_render import THAI_MONTHS
from gateway.transforms import is_valid_pid, mask_pid

__all__ = ["Access", "accesses", "render_letter"]

_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm; }
body { font-family: "TH Sarabun New", Sarabun, "Noto Sans Thai", "Loma", sans-serif;
       font-size: 11pt; line-height: 1.45; color: #000; max-width: 178mm; margin: 0 auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; } h1 small { display: block; font-size: 11pt; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; break-after: avoid; }
table { width: 100%; border-collapse: collapse; font-size: 10pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th, td { border: 0.3mm solid #666; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eee; }
.meta td { border: none; padding: 0.5mm 2mm 0.5mm 0; }
.en { color: #333; }
.sign { margin-top: 14mm; break-inside: avoid; }
.sign p { margin: 1mm 0; }
"""


@dataclass(frozen=True, slots=True)
class Access:
    """One call about the citizen, as the letter shows it."""

    when: dt.datetime  # local
    office: str
    channel: str  # the LC2 consumer the call came through
    service: str
    officer: str  # masked
    refused: bool


def _thai_date(d: dt.date) -> str:
    return f"{d.day} {THAI_MONTHS[d.month - 1]} {d.year + 543}"


def _officer(officer: Any) -> str:
    text = str(officer or "")
    return mask_pid(text) if is_valid_pid(text) else ("-" if not text else "x" * len(text))


def accesses(
    rows: Iterable[Mapping[str, Any]], tz: ZoneInfo, services: Mapping[str, str]
) -> list[Access]:
    """``services`` maps a service name to how the letter names it."""
    out = []
    for r in rows:
        if r.get("kind") == "sandbox" or r.get("sandbox"):
            continue  # test calls read no one's record
        name = str(r.get("service") or "-")
        out.append(
            Access(
                when=dt.datetime.fromisoformat(str(r["ts"])).astimezone(tz),
                office=str(r.get("office") or "-"),
                channel=str(r.get("consumer") or "-"),
                service=services.get(name, name),
                officer=_officer(r.get("officer")),
                refused=int(r["status"]) >= 400,
            )
        )
    return out


def _table(items: list[Access]) -> str:
    e = html.escape
    head = (
        "<thead><tr><th>วันเวลา<br><span class='en'>Date and time</span></th>"
        "<th>หน่วยงานผู้ขอ (รหัสสำนักงาน)<br><span class='en'>Requesting office</span></th>"
        "<th>ช่องทาง<br><span class='en'>Channel</span></th>"
        "<th>บริการ<br><span class='en'>Service</span></th>"
        "<th>เจ้าหน้าที่<br><span class='en'>Officer</span></th></tr></thead>"
    )
    body = "".join(
        f"<tr><td>{e(_thai_date(a.when.date()))} {a.when:%H:%M} น.<br>"
        f"<span class='en'>{a.when:%Y-%m-%d %H:%M}</span></td><td>{e(a.office)}</td>"
        f"<td>{e(a.channel)}</td><td>{e(a.service)}</td><td>{e(a.officer)}</td></tr>"
        for a in items
    )
    return f"<table class='accesses'>{head}<tbody>{body}</tbody></table>"


def render_letter(
    items: list[Access],
    *,
    pid: str,
    period: tuple[str, str] | None,
    department: str | None,
    today: dt.date,
) -> str:
    e = html.escape
    seen = [a for a in items if not a.refused]
    refused = [a for a in items if a.refused]
    masked = mask_pid(pid)
    offices = sorted({a.office for a in seen})
    when = (
        f"{e(period[0])} – {e(period[1])}"
        if period
        else "ทั้งหมดที่เก็บรักษาไว้ <span class='en'>(all records kept)</span>"
    )
    parts = [
        "<!doctype html><html lang='th'><head><meta charset='utf-8'>",
        "<title>หนังสือแจ้งการเข้าถึงข้อมูลส่วนบุคคล / Notice of access to personal data</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>หนังสือแจ้งการเข้าถึงข้อมูลส่วนบุคคล"
        "<small class='en'>Notice of access to your personal data</small></h1>",
        "<table class='meta'>",
        "<tr><td>หน่วยงาน / <span class='en'>Department</span></td>"
        f"<td>{e(department or '')}</td></tr>",
        f"<tr><td>วันที่ / <span class='en'>Date</span></td><td>{e(_thai_date(today))} "
        f"<span class='en'>({today.isoformat()})</span></td></tr>",
        f"<tr><td>เรียน / <span class='en'>To</span></td><td>เจ้าของข้อมูล เลขประจำตัวประชาชน "
        f"{e(masked)} <span class='en'>(the data subject, citizen ID {e(masked)})</span></td></tr>",
        f"<tr><td>ช่วงเวลา / <span class='en'>Period</span></td><td>{when}</td></tr>",
        "</table>",
        "<p>ตามที่ท่านขอทราบการเข้าถึงข้อมูลส่วนบุคคลของท่าน ตามพระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล "
        "พ.ศ. 2562 หน่วยงานได้ตรวจสอบบันทึกการเข้าถึงข้อมูลผ่านศูนย์แลกเปลี่ยนข้อมูลกลาง (Linkage Center) "
        f"ของกรมการปกครองแล้ว พบการเรียกดูข้อมูลของท่าน {len(seen)} ครั้ง "
        f"จาก {len(offices)} สำนักงาน ดังนี้</p>",
        "<p class='en'>As you asked under the Personal Data Protection Act B.E. 2562 (2019), the "
        "department has searched its record of access through the Department of Provincial "
        f"Administration's Linkage Center: your records were looked up {len(seen)} time(s) by "
        f"{len(offices)} office(s), as listed below.</p>",
        "<h2>การเรียกดูข้อมูลของท่าน <span class='en'>/ Look-ups of your records</span></h2>",
        _table(seen) if seen else "<p>ไม่พบ <span class='en'>/ None found.</span></p>",
    ]
    if refused:
        parts += [
            "<h2>คำขอที่ระบบปฏิเสธ ไม่มีการให้ข้อมูล "
            "<span class='en'>/ Requests refused, no data given</span></h2>",
            _table(refused),
        ]
    parts += [
        "<p>เจ้าหน้าที่ผู้เรียกดูแสดงด้วยรหัสสำนักงานและเลขประจำตัวที่ปิดบังบางส่วน "
        "เลขประจำตัวประชาชนของท่านแสดงแบบปิดบังเช่นกัน หากต้องการรายละเอียดเพิ่มเติม "
        "โปรดติดต่อเจ้าหน้าที่คุ้มครองข้อมูลส่วนบุคคลของหน่วยงาน</p>",
        "<p class='en'>Officers are shown by their office and a masked ID; your own ID is masked "
        "too. For more detail, ask the department's data protection officer.</p>",
        "<div class='sign'><p>(ลงชื่อ) ..................................................</p>"
        "<p>เจ้าหน้าที่คุ้มครองข้อมูลส่วนบุคคล <span class='en'>/ Data Protection Officer</span></p>"
        f"<p>{e(department or '')}</p></div>",
        "</body></html>",
    ]
    return "".join(parts)
