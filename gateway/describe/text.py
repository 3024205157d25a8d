"""The registration pack as Markdown or as a standalone HTML page, in Thai and English.

Both lay out the same :class:`~gateway.describe.pack.Pack`: the conventions
common to every service, then per service its purpose, URLs, parameters,
output fields, a sample request and the sandbox's answer to it, then the
error codes.  The HTML page has its CSS inline, no script and no external
resource, so it opens and prints the same anywhere, attached to a letter.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterator
from typing import Any

from gateway.describe.pack import API_KEY_VARIABLE, PASSWORD_VARIABLE, Pack, ServiceDoc

__all__ = ["render_html", "render_markdown", "thai_date"]

_THAI_MONTHS = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)

TITLE_EN = "LC2 data service registration pack"
TITLE_TH = "เอกสารประกอบการขอเชื่อมโยงข้อมูลกับ LC2"


def thai_date(day: dt.date) -> str:
    """As in an official letter: 15 มกราคม 2568 (Buddhist Era year)."""
    return f"{day.day} {_THAI_MONTHS[day.month - 1]} {day.year + 543}"


def _example(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _yes(required: bool) -> tuple[str, str]:
    return ("yes", "ต้องระบุ") if required else ("no", "ไม่บังคับ")


# --- shared content, as (label EN, label TH, value) rows ---------------------------------


def _conventions(pack: Pack) -> list[tuple[str, str, str]]:
    env = pack.envelope
    auth = "HTTP Basic, one credential per consumer"
    if pack.api_key_header:
        auth += f"; an API key in {pack.api_key_header} where the consumer has one"
    agent = (
        f"must start with {pack.user_agent_prefix}"
        if pack.user_agent_prefix
        else "Linkage Center 2/… (not checked)"
    )
    return [
        ("Method", "วิธีเรียก", "GET; input in the URL path or query string"),
        ("Authentication", "การยืนยันตัวตน", auth),
        ("Office code header", "รหัสหน่วยงานที่ขอข้อมูล", pack.office_header),
        ("Officer header", "เลขประจำตัวประชาชนเจ้าหน้าที่ผู้ขอ", pack.officer_header),
        ("User-Agent", "User-Agent", agent),
        ("Sandbox header", "ส่วนหัวสำหรับทดสอบ", f"{pack.sandbox_header}: 1 (or the sandbox URL)"),
        ("Request id header", "รหัสอ้างอิงคำขอ", f"{pack.request_id_header} (echoed and audited)"),
        ("Response type", "รูปแบบผลลัพธ์", "application/json; charset=utf-8"),
        (
            "Success envelope",
            "โครงสร้างผลลัพธ์",
            f'{{"{env["code"]}":"{env["success_code"]}","{env["message"]}":'
            f'"{env["success_message"]}","{env["data"]}":[…]}}',
        ),
        ("No match", "ไม่พบข้อมูล", f'HTTP 200 with "{env["data"]}": [] (ไม่ใช่ 404)'),
    ]


def _urls(svc: ServiceDoc) -> list[tuple[str, str, str]]:
    return [
        ("Data (production)", "ข้อมูลจริง", svc.data_url),
        ("Sandbox (test data)", "ข้อมูลทดสอบ (sandbox)", svc.sandbox_url),
        ("Health", "สถานะบริการ", svc.health_url),
    ]


# --- Markdown ----------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _table(header: list[str], rows: list[list[object]]) -> Iterator[str]:
    yield "| " + " | ".join(header) + " |"
    yield "|" + "---|" * len(header)
    for row in rows:
        yield "| " + " | ".join(_cell(c) for c in row) + " |"


def _md_service(svc: ServiceDoc) -> Iterator[str]:
    yield f"## {svc.name}: {svc.description_th or svc.description_en}"
    yield ""
    yield f"- **วัตถุประสงค์**: {svc.description_th or '-'}"
    yield f"- **Purpose**: {svc.description_en or '-'}"
    if svc.max_rows is not None:
        yield f"- **Rows per answer, at most / จำนวนรายการสูงสุดต่อคำขอ**: {svc.max_rows}"
    if svc.usernames:
        users = ", ".join(f"`{u}`" for u in svc.usernames)
        yield f"- **Basic auth username(s) / ชื่อผู้ใช้**: {users} (password handed over separately)"
    yield ""
    yield from _table(["URL", "", "GET"], [[th, en, f"`{url}`"] for en, th, url in _urls(svc)])
    yield ""
    yield "### พารามิเตอร์ / Parameters"
    yield ""
    rows: list[list[object]] = []
    for p in svc.params:
        req_en, req_th = _yes(p.required)
        rows.append(
            [
                f"`{p.name}`",
                p.location,
                p.type,
                f"{req_th} / {req_en}",
                f"{p.rules_th}<br>{p.rules_en}",
                f"`{p.example}`" if p.example else "",
                " / ".join(x for x in (p.description_th, p.description_en) if x),
            ]
        )
    header = ["ชื่อ Name", "ส่งทาง In", "ชนิด Type", "บังคับ Required", "เงื่อนไข Rules"]
    yield from _table([*header, "ตัวอย่าง Example", "คำอธิบาย Description"], rows)
    yield ""
    yield "### รายการข้อมูลที่ส่งกลับ / Output fields"
    yield ""
    frows: list[list[object]] = []
    for f in svc.fields:
        fmt = "<br>".join(x for x in (f.format_th, f.format_en) if x)
        frows.append(
            [
                f"`{f.path}`",
                f"{f.type_th} ({f.type})" + (f"<br>{fmt}" if fmt else ""),
                f.meaning_th,
                f.meaning_en,
                f"`{f.source}`" if f.source else "",
                _example(f.example),
            ]
        )
    yield from _table(
        [
            "ชื่อ Field",
            "ชนิด Type",
            "ความหมาย",
            "Meaning",
            "คอลัมน์ต้นทาง Source column",
            "ตัวอย่าง Example",
        ],
        frows,
    )
    yield ""
    yield "### ตัวอย่างคำขอ / Sample request (sandbox)"
    yield ""
    if svc.sample_curl:
        secrets = f"`{PASSWORD_VARIABLE}`" + (
            f" and `{API_KEY_VARIABLE}`" if API_KEY_VARIABLE in svc.sample_curl else ""
        )
        yield f"Set {secrets} to the consumer's credentials first:"
        yield ""
        yield "```sh"
        yield svc.sample_curl
        yield "```"
        yield ""
        yield "### ตัวอย่างผลลัพธ์ / Sample response"
        yield ""
        yield "```json"
        yield svc.sample_response or ""
        yield "```"
    else:
        yield "(no sample: a required parameter has no valid example)"
    yield ""


def render_markdown(pack: Pack) -> str:
    out = [
        f"# {TITLE_TH} / {TITLE_EN}",
        "",
        f"- **Config / ไฟล์ตั้งค่า**: `{pack.source}` (version `{pack.version}`)",
        f"- **วันที่จัดทำ / Date**: {thai_date(pack.generated)} ({pack.generated.isoformat()})",
        f"- **Base URL**: `{pack.base_url}`",
        f"- **Services / บริการ**: {', '.join(s.name for s in pack.services)}",
        "",
        "## ข้อกำหนดร่วมของทุกบริการ / Common to every service",
        "",
        *_table(
            ["รายการ", "Item", "ค่า / Value"],
            [[th, en, v] for en, th, v in _conventions(pack)],
        ),
        "",
    ]
    for svc in pack.services:
        out.extend(_md_service(svc))
    out += ["## รหัสผลลัพธ์และข้อผิดพลาด / Response and error codes", ""]
    out.extend(
        _table(
            ["responseCode", "HTTP", "ความหมาย", "Meaning"],
            [[f"`{e.code}`", e.status, e.message_th, e.message_en] for e in pack.errors],
        )
    )
    out.append("")
    return "\n".join(out)


# --- HTML --------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; }
body { font-family: "TH Sarabun New", "TH SarabunPSK", Sarabun, "Noto Sans Thai", Loma,
       Tahoma, sans-serif; font-size: 16px; line-height: 1.5; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #111; }
h1 { font-size: 1.6em; border-bottom: 2px solid #234; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #999; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #999; padding: .25em .45em; vertical-align: top; text-align: left; }
th { background: #e8edf3; }
td.nested { padding-left: 1.6em; }
code, pre { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: .88em; }
pre { background: #f4f4f4; border: 1px solid #ccc; padding: .6em; white-space: pre-wrap;
      word-break: break-all; }
.en { color: #444; }
.meta td:first-child { width: 16em; }
section.service { break-before: page; }
/* A4, and no heading left alone at the foot of a page: a heading (and the line that
   introduces a sample) stays with what follows it; a table row or a short block is never
   cut, a long table repeats its header, a long sample may run on to the next page. */
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  h1, h2, h3, p.lead { break-after: avoid; page-break-after: avoid; }
  tr, td, th, .meta { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  pre { break-inside: auto; orphans: 4; widows: 4; }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _both(th: str, en: str) -> str:
    if th and en:
        return f'{_e(th)}<br><span class="en">{_e(en)}</span>'
    return _e(th or en)


def _html_rows(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_service(svc: ServiceDoc) -> str:
    parts = [
        f'<section class="service" id="service-{_e(svc.name)}">',
        f"<h2>{_e(svc.name)}: {_e(svc.description_th or svc.description_en)}</h2>",
        '<table class="meta"><tbody>',
        f"<tr><th>วัตถุประสงค์<br><span class=en>Purpose</span></th>"
        f"<td>{_both(svc.description_th, svc.description_en)}</td></tr>",
    ]
    for en, th, url in _urls(svc):
        parts.append(f"<tr><th>{_both(th, en)}</th><td><code>GET {_e(url)}</code></td></tr>")
    if svc.max_rows is not None:
        parts.append(
            "<tr><th>จำนวนรายการสูงสุดต่อคำขอ<br><span class=en>Rows per answer, at most</span>"
            f"</th><td>{svc.max_rows}</td></tr>"
        )
    if svc.usernames:
        users = ", ".join(f"<code>{_e(u)}</code>" for u in svc.usernames)
        parts.append(
            "<tr><th>ชื่อผู้ใช้ (Basic)<br><span class=en>Username (Basic)</span></th>"
            f"<td>{users} (รหัสผ่านส่งมอบแยกต่างหาก / password handed over separately)</td></tr>"
        )
    parts.append("</tbody></table>")

    parts.append("<h3>พารามิเตอร์ <span class=en>/ Parameters</span></h3>")
    prow = []
    for p in svc.params:
        req_en, req_th = _yes(p.required)
        prow.append(
            [
                f"<td><code>{_e(p.name)}</code></td>",
                f"<td>{_e(p.location)}</td>",
                f"<td>{_e(p.type)}</td>",
                f"<td>{_both(req_th, req_en)}</td>",
                f"<td>{_both(p.rules_th, p.rules_en)}</td>",
                f"<td><code>{_e(p.example or '')}</code></td>",
                f"<td>{_both(p.description_th, p.description_en)}</td>",
            ]
        )
    parts.append(
        _html_rows(
            prow,
            [
                "ชื่อ<br><span class=en>Name</span>",
                "ส่งทาง<br><span class=en>In</span>",
                "ชนิด<br><span class=en>Type</span>",
                "บังคับ<br><span class=en>Required</span>",
                "เงื่อนไข<br><span class=en>Rules</span>",
                "ตัวอย่าง<br><span class=en>Example</span>",
                "คำอธิบาย<br><span class=en>Description</span>",
            ],
        )
    )

    parts.append("<h3>รายการข้อมูลที่ส่งกลับ <span class=en>/ Output fields</span></h3>")
    frow = []
    for f in svc.fields:
        fmt = _both(f.format_th, f.format_en)
        nested = ' class="nested"' if f.depth else ""
        frow.append(
            [
                f"<td{nested}><code>{_e(f.path)}</code></td>",
                f"<td>{_both(f.type_th, f.type)}{'<br>' + fmt if fmt else ''}</td>",
                f"<td>{_both(f.meaning_th, f.meaning_en)}</td>",
                f"<td><code>{_e(f.source)}</code></td>",
                f"<td>{_e(_example(f.example))}</td>",
            ]
        )
    parts.append(
        _html_rows(
            frow,
            [
                "ชื่อ<br><span class=en>Field</span>",
                "ชนิดข้อมูล<br><span class=en>Type</span>",
                "ความหมาย<br><span class=en>Meaning</span>",
                "คอลัมน์ต้นทาง<br><span class=en>Source column</span>",
                "ตัวอย่าง<br><span class=en>Example</span>",
            ],
        )
    )

    parts.append("<h3>ตัวอย่างคำขอ <span class=en>/ Sample request (sandbox)</span></h3>")
    if svc.sample_curl:
        names = PASSWORD_VARIABLE + (
            f", {API_KEY_VARIABLE}" if API_KEY_VARIABLE in svc.sample_curl else ""
        )
        parts.append(
            f'<p class="lead">กำหนดตัวแปร <code>{names}</code> ก่อนเรียก '
            f"<span class=en>(set {names} to the credentials first)</span></p>"
        )
        parts.append(f"<pre>{_e(svc.sample_curl)}</pre>")
        parts.append("<h3>ตัวอย่างผลลัพธ์ <span class=en>/ Sample response</span></h3>")
        parts.append(f'<pre class="json">{_e(svc.sample_response or "")}</pre>')
    else:
        parts.append("<p>(no sample: a required parameter has no valid example)</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(pack: Pack) -> str:
    conv = "".join(
        f"<tr><th>{_both(th, en)}</th><td>{_e(v)}</td></tr>" for en, th, v in _conventions(pack)
    )
    errors = [
        [
            f"<td><code>{_e(e.code)}</code></td>",
            f"<td>{e.status}</td>",
            f"<td>{_both(e.message_th, e.message_en)}</td>",
        ]
        for e in pack.errors
    ]
    services = "\n".join(_html_service(s) for s in pack.services)
    return f"""<!DOCTYPE html>
<html lang="th">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(TITLE_TH)} / {_e(TITLE_EN)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(TITLE_TH)}<br><span class="en">{_e(TITLE_EN)}</span></h1>
<table class="meta"><tbody>
<tr><th>ไฟล์ตั้งค่า <span class=en>/ Config</span></th>
<td><code>{_e(pack.source)}</code> (version <code>{_e(pack.version)}</code>)</td></tr>
<tr><th>วันที่จัดทำ <span class=en>/ Date</span></th>
<td>{_e(thai_date(pack.generated))} ({pack.generated.isoformat()})</td></tr>
<tr><th>Base URL</th><td><code>{_e(pack.base_url)}</code></td></tr>
<tr><th>บริการ <span class=en>/ Services</span></th>
<td>{_e(", ".join(s.name for s in pack.services))}</td></tr>
</tbody></table>
<h2>ข้อกำหนดร่วมของทุกบริการ <span class="en">/ Common to every service</span></h2>
<table class="meta"><tbody>{conv}</tbody></table>
{services}
<section class="service">
<h2>รหัสผลลัพธ์และข้อผิดพลาด <span class="en">/ Response and error codes</span></h2>
{_html_rows(errors, ["responseCode", "HTTP", "ความหมาย<br><span class=en>Meaning</span>"])}
</section>
</body>
</html>
"""
