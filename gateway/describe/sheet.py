"""The registration pack as a spreadsheet: CSV (one sheet) or XLSX (three sheets).

The data dictionary is one rectangular table, one row per parameter or
output field, each row complete on its own (service, purpose, URLs), so an
officer can filter it by service and paste it into a letter's annex.  CSV is
written as UTF-8 with a byte-order mark, which is what makes Excel read Thai
text correctly.  The XLSX workbook adds a sheet of services (with the sample
request and response) and one of response codes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.describe.pack import Pack, ServiceDoc
from gateway.describe.text import thai_date

__all__ = ["DICTIONARY_HEADER", "dictionary_rows", "render_csv", "write_xlsx"]

DICTIONARY_HEADER = (
    "บริการ / Service",
    "วัตถุประสงค์ (ไทย)",
    "Purpose (English)",
    "URL ข้อมูลจริง / Data URL",
    "URL ทดสอบ / Sandbox URL",
    "ประเภท / Item",
    "ชื่อ / Name",
    "ชนิดข้อมูล / Type",
    "บังคับ / Required",
    "เงื่อนไขหรือรูปแบบ / Rules or format",
    "ตัวอย่าง / Example",
    "ความหมาย (ไทย)",
    "Meaning (English)",
    "คอลัมน์ต้นทาง / Source column",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _service_rows(svc: ServiceDoc) -> Iterator[tuple[str, ...]]:
    head = (svc.name, svc.description_th, svc.description_en, svc.data_url, svc.sandbox_url)
    for p in svc.params:
        yield (
            *head,
            f"parameter ({p.location})",
            p.name,
            p.type,
            "ต้องระบุ / yes" if p.required else "ไม่บังคับ / no",
            f"{p.rules_th} / {p.rules_en}",
            p.example or "",
            p.description_th,
            p.description_en,
            "",
        )
    for f in svc.fields:
        fmt = " / ".join(x for x in (f.format_th, f.format_en) if x)
        yield (
            *head,
            "output field",
            f.path,
            f.type,
            "",
            fmt,
            _text(f.example),
            f.meaning_th,
            f.meaning_en,
            f.source,
        )


def dictionary_rows(pack: Pack) -> list[tuple[str, ...]]:
    """Header and one row per parameter and output field of every service."""
    rows: list[tuple[str, ...]] = [DICTIONARY_HEADER]
    for svc in pack.services:
        rows.extend(_service_rows(svc))
    return rows


def render_csv(pack: Pack) -> str:
    """CSV text; written with ``encoding="utf-8-sig"`` it opens in Excel with Thai intact."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(dictionary_rows(pack))
    return buf.getvalue()


_FONT = "TH Sarabun New"  # the Thai government's standard document font


def write_xlsx(pack: Pack, out: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    wb = Workbook()
    body_font, head_font = Font(name=_FONT, size=14), Font(name=_FONT, size=14, bold=True)
    fill = PatternFill("solid", fgColor="E8EDF3")
    wrap = Alignment(wrap_text=True, vertical="top")

    def table(ws: Worksheet, rows: list[tuple[Any, ...]], widths: list[int]) -> None:
        for row in rows:
            ws.append(list(row))
        for cells in ws.iter_rows():
            for cell in cells:
                cell.font, cell.alignment = body_font, wrap
        for cell in ws[1]:
            cell.font, cell.fill = head_font, fill
        for i, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions

    services = wb.active
    assert services is not None
    services.title = "บริการ Services"
    rows: list[tuple[Any, ...]] = [
        (
            "บริการ / Service",
            "วัตถุประสงค์ (ไทย)",
            "Purpose (English)",
            "URL ข้อมูลจริง / Data URL",
            "URL ทดสอบ / Sandbox URL",
            "URL สถานะ / Health URL",
            "ชื่อผู้ใช้ / Username",
            "ตัวอย่างคำขอ / Sample request",
            "ตัวอย่างผลลัพธ์ / Sample response",
        )
    ]
    for s in pack.services:
        rows.append(
            (
                s.name,
                s.description_th,
                s.description_en,
                s.data_url,
                s.sandbox_url,
                s.health_url,
                ", ".join(s.usernames),
                s.sample_curl or "",
                s.sample_response or "",
            )
        )
    table(services, rows, [16, 30, 30, 40, 40, 40, 18, 60, 60])

    dictionary = wb.create_sheet("พจนานุกรมข้อมูล Dictionary")
    table(
        dictionary,
        list(dictionary_rows(pack)),
        [14, 24, 24, 30, 30, 16, 22, 10, 10, 40, 20, 28, 28, 18],
    )

    codes = wb.create_sheet("รหัสผลลัพธ์ Codes")
    table(
        codes,
        [("responseCode", "HTTP", "ความหมาย", "Meaning")]
        + [(e.code, e.status, e.message_th, e.message_en) for e in pack.errors],
        [14, 8, 60, 60],
    )
    wb.properties.title = "LC2 data service registration pack"
    wb.properties.subject = f"{pack.source} version {pack.version}"
    wb.properties.description = f"generated {thai_date(pack.generated)}"
    wb.save(out)
