"""The monthly report as Markdown, as one self-contained HTML file, and as CSV.

The HTML carries its charts as inline SVG drawn here (calls per day with
weekends and holidays shaded, top services, calls by hour with office hours
marked): no script, no font or style sheet from elsewhere, so it opens the
same on an air-gapped machine and prints as it shows.  Markdown gets the
same figures as text bars.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Sequence

from gateway.audit.report import KINDS, Anomaly, MonthlyReport, UsageRow

__all__ = ["anomalies_csv", "render_html", "render_markdown", "usage_csv"]

THAI_MONTHS = (
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
KIND_TITLES = {
    "off_hours": "Outside office hours, weekends and public holidays / นอกเวลาราชการและวันหยุด",
    "volume": "Volume far above the officer's own baseline / ปริมาณการใช้สูงผิดปกติ",
    "citizen_burst": "Many citizens in a short time / ค้นหาหลายคนในเวลาสั้น",
    "repeated_citizen": "Repeated lookups of one citizen / ค้นหาบุคคลเดิมซ้ำ",
    "no_grant": "Calls from offices or for services without a grant / ไม่ได้รับอนุญาต",
}
_USAGE_HEAD = ("calls", "production", "sandbox", "errors", "citizens")


def _title(r: MonthlyReport) -> tuple[str, str]:
    th = f"รายงานการเข้าถึงข้อมูลประจำเดือน{THAI_MONTHS[r.first_day.month - 1]} {r.first_day.year + 543}"
    return f"Monthly access report {r.month}", th


def _counts(u: UsageRow) -> list[str]:
    return [str(u.calls), str(u.production), str(u.sandbox), str(u.errors), str(u.citizens)]


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(v: str) -> str:
        return v.replace("|", "\\|")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _bar(n: int, top: int, width: int = 40) -> str:
    return "█" * (round(n / top * width) if top else 0)


def _anomaly_row(a: Anomaly) -> list[str]:
    when = f"{a.start}-{a.end}" if a.start and a.end and a.start != a.end else a.start
    return [
        a.day.isoformat(),
        a.office,
        a.officer if a.officer != "-" else "",
        a.service,
        when,
        str(a.count),
        a.detail,
        " ".join(a.request_ids),
    ]


_ANOMALY_HEAD = ("day", "office", "officer", "service", "time", "count", "detail", "request ids")


def render_markdown(r: MonthlyReport) -> str:
    en, th = _title(r)
    out = io.StringIO()
    w = out.write
    w(f"# {en}\n\n**{th}**\n\n")
    w(f"Period {r.first_day} to {r.last_day} ({r.timezone}).")
    w(f" Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.\n\n")
    for line in r.integrity:
        w(f"- {line}\n")
    for line in r.calendar_warnings:
        w(f"- Warning / คำเตือน: {line}\n")
    t = r.totals
    w("\n## Summary / สรุป\n\n")
    w(
        _md_table(
            ("calls", "production", "sandbox", "errors", "citizens", "offices", "officers"),
            [
                [
                    str(t.get(k, 0))
                    for k in (
                        "calls",
                        "production",
                        "sandbox",
                        "errors",
                        "citizens",
                        "offices",
                        "officers",
                    )
                ]
            ],
        )
    )
    w(f"\n## Anomalies to review / รายการที่ต้องตรวจสอบ ({len(r.anomalies)})\n\n")
    if not r.anomalies:
        w("None found.\n")
    for kind in KINDS:
        items = [a for a in r.anomalies if a.kind == kind]
        if items:
            w(f"\n### {KIND_TITLES[kind]} ({len(items)})\n\n")
            w(_md_table(_ANOMALY_HEAD, [_anomaly_row(a) for a in items]))
    w("\n## Calls per day / จำนวนการเรียกใช้รายวัน\n\n```text\n")
    top = max((p + s for p, s in r.per_day.values()), default=0)
    hol = r.holidays
    for day, (prod, sand) in r.per_day.items():
        mark = " holiday" if day in hol else (" weekend" if day.isoweekday() > 5 else "")
        w(f"{day} {day.strftime('%a')} {_bar(prod + sand, top):40} {prod + sand}{mark}\n")
    w("```\n\n## Top services / บริการที่ใช้มากที่สุด\n\n```text\n")
    top_s = max(r.per_service.values(), default=0)
    for name, n in list(r.per_service.items())[:10]:
        w(f"{name[:20]:20} {_bar(n, top_s):40} {n}\n")
    w("```\n\n## By office / ตามหน่วยงาน\n\n")
    w(_md_table(("office", *_USAGE_HEAD), [[u.office, *_counts(u)] for u in r.by_office]))
    w("\n## By officer / ตามเจ้าหน้าที่\n\n")
    w(
        _md_table(
            ("office", "officer", *_USAGE_HEAD),
            [[u.office, u.officer, *_counts(u)] for u in r.by_officer],
        )
    )
    w("\n## By office, officer and service / รายละเอียด\n\n")
    w(
        _md_table(
            ("office", "officer", "service", *_USAGE_HEAD),
            [[u.office, u.officer, u.service, *_counts(u)] for u in r.usage],
        )
    )
    if hol:
        w("\n## Public holidays in the month / วันหยุดราชการ\n\n")
        w(_md_table(("day", "holiday"), [[d.isoformat(), n] for d, n in sorted(hol.items())]))
    return out.getvalue()


# -- SVG ---------------------------------------------------------------------------------

_INK, _ACCENT, _SOFT, _SHADE, _HOLI = "#1f2933", "#0b6e4f", "#8fd3b6", "#eceff1", "#fde2e1"


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _svg_days(r: MonthlyReport) -> str:
    days = list(r.per_day.items())
    width, height, left, bottom, top_pad = 760, 240, 44, 28, 12
    plot_h = height - bottom - top_pad
    step = (width - left - 8) / max(len(days), 1)
    peak = max((p + s for _, (p, s) in days), default=0) or 1
    hol = r.holidays
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="calls per day" width="{width}" height="{height}">'
    ]
    for i, (day, _) in enumerate(days):
        if day in hol or day.isoweekday() > 5:
            fill = _HOLI if day in hol else _SHADE
            why = hol.get(day, "weekend")
            parts.append(
                f'<rect x="{left + i * step:.1f}" y="{top_pad}" width="{step:.1f}" '
                f'height="{plot_h}" fill="{fill}"><title>{_e(day)}: {_e(why)}</title></rect>'
            )
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#cfd8dc"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{round(peak * frac)}</text>"
        )
    for i, (day, (prod, sand)) in enumerate(days):
        x = left + i * step + step * 0.15
        bw = step * 0.7
        hp = plot_h * prod / peak
        hs = plot_h * sand / peak
        base = top_pad + plot_h
        parts.append(
            f'<rect x="{x:.1f}" y="{base - hp:.1f}" width="{bw:.1f}" height="{hp:.1f}" '
            f'fill="{_ACCENT}"><title>{_e(day)}: {prod} production</title></rect>'
            f'<rect x="{x:.1f}" y="{base - hp - hs:.1f}" width="{bw:.1f}" height="{hs:.1f}" '
            f'fill="{_SOFT}"><title>{_e(day)}: {sand} sandbox</title></rect>'
        )
        if day.day == 1 or day.day % 5 == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="11">{day.day}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_services(r: MonthlyReport) -> str:
    items = list(r.per_service.items())[:10]
    row, left, width = 24, 170, 760
    height = row * len(items) + 10
    peak = max((n for _, n in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="top services" width="{width}" height="{height}">'
    ]
    for i, (name, n) in enumerate(items):
        y = 5 + i * row
        bw = (width - left - 70) * n / peak
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12">{_e(name)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{bw:.1f}" height="{row - 8}" fill="{_ACCENT}">'
            f"<title>{_e(name)}: {n}</title></rect>"
            f'<text x="{left + bw + 6:.1f}" y="{y + 15}" font-size="12">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_hours(r: MonthlyReport) -> str:
    width, height, left, bottom = 760, 180, 44, 24
    plot_h = height - bottom - 10
    step = (width - left - 8) / 24
    peak = max(r.per_hour) or 1
    cfg = r.settings
    x0 = left + step * cfg.office_start / 60
    x1 = left + step * cfg.office_end / 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="calls by hour" width="{width}" height="{height}">',
        f'<rect x="{x0:.1f}" y="10" width="{x1 - x0:.1f}" height="{plot_h}" fill="{_SHADE}">'
        "<title>office hours</title></rect>",
    ]
    for h, n in enumerate(r.per_hour):
        bh = plot_h * n / peak
        x = left + h * step + step * 0.15
        outside = not (cfg.office_start <= h * 60 < cfg.office_end)
        color = "#b23a48" if outside and n else _ACCENT
        parts.append(
            f'<rect x="{x:.1f}" y="{10 + plot_h - bh:.1f}" width="{step * 0.7:.1f}" '
            f'height="{bh:.1f}" fill="{color}"><title>{h:02d}:00: {n}</title></rect>'
            f'<text x="{x + step * 0.35:.1f}" y="{height - 8}" text-anchor="middle" '
            f'font-size="10">{h:02d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:"Sarabun","Noto Sans Thai","Tahoma",sans-serif;color:#1f2933;margin:2rem;
max-width:1100px}h1{margin-bottom:.2rem}h2{border-bottom:2px solid #0b6e4f;padding-bottom:.2rem;
margin-top:2rem}table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #cfd8dc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eceff1}.flag{color:#b23a48}.summary td{font-size:1.2rem;text-align:center}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#52606d}
@media print{body{margin:0}h2{break-after:avoid}}
"""


def render_html(r: MonthlyReport) -> str:
    en, th = _title(r)
    t = r.totals
    parts = [
        "<!doctype html><html lang='th'><head><meta charset='utf-8'>",
        f"<title>{_e(en)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(en)}</h1><p><b>{_e(th)}</b><br>Period {_e(r.first_day)} to {_e(r.last_day)} "
        f"({_e(r.timezone)}).</p>",
    ]
    if r.integrity:
        parts.append("<ul>" + "".join(f"<li>{_e(x)}</li>" for x in r.integrity) + "</ul>")
    if r.calendar_warnings:
        parts.append(
            "<ul class='warnings'>"
            + "".join(f"<li>Warning / คำเตือน: {_e(x)}</li>" for x in r.calendar_warnings)
            + "</ul>"
        )
    keys = ("calls", "production", "sandbox", "errors", "citizens", "offices", "officers")
    parts.append("<h2>Summary / สรุป</h2><table class='summary'><tr>")
    parts.append("".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr><tr>")
    parts.append("".join(f"<td>{t.get(k, 0)}</td>" for k in keys) + "</tr></table>")
    parts.append(
        f"<h2 class='flag'>Anomalies to review / รายการที่ต้องตรวจสอบ ({len(r.anomalies)})</h2>"
    )
    if not r.anomalies:
        parts.append("<p>None found.</p>")
    for kind in KINDS:
        items = [a for a in r.anomalies if a.kind == kind]
        if items:
            parts.append(f"<h3>{_e(KIND_TITLES[kind])} ({len(items)})</h3>")
            parts.append(_html_table(_ANOMALY_HEAD, [_anomaly_row(a) for a in items]))
    parts.append("<h2>Calls per day / จำนวนการเรียกใช้รายวัน</h2><figure>")
    parts.append(_svg_days(r))
    parts.append(
        "<figcaption>Dark: production; light: sandbox; grey columns: weekends; "
        "rose columns: public holidays.</figcaption></figure>"
    )
    parts.append("<h2>Top services / บริการที่ใช้มากที่สุด</h2><figure>")
    parts.append(_svg_services(r) + "</figure>")
    parts.append("<h2>Production calls by hour / ตามช่วงเวลา</h2><figure>")
    parts.append(
        _svg_hours(r) + "<figcaption>Grey band: office hours; red bars: calls outside "
        "them.</figcaption></figure>"
    )
    parts.append("<h2>By office / ตามหน่วยงาน</h2>")
    parts.append(
        _html_table(("office", *_USAGE_HEAD), [[u.office, *_counts(u)] for u in r.by_office])
    )
    parts.append("<h2>By officer / ตามเจ้าหน้าที่</h2>")
    parts.append(
        _html_table(
            ("office", "officer", *_USAGE_HEAD),
            [[u.office, u.officer, *_counts(u)] for u in r.by_officer],
        )
    )
    parts.append("<h2>By office, officer and service / รายละเอียด</h2>")
    parts.append(
        _html_table(
            ("office", "officer", "service", *_USAGE_HEAD),
            [[u.office, u.officer, u.service, *_counts(u)] for u in r.usage],
        )
    )
    if r.holidays:
        parts.append("<h2>Public holidays in the month / วันหยุดราชการ</h2>")
        parts.append(
            _html_table(("day", "holiday"), [[d.isoformat(), n] for d, n in r.holidays.items()])
        )
    parts.append("</body></html>\n")
    return "".join(parts)


def usage_csv(r: MonthlyReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(("month", "office", "officer", "service", *_USAGE_HEAD))
    for u in r.usage:
        w.writerow((r.month, u.office, u.officer, u.service, *_counts(u)))
    return out.getvalue()


def anomalies_csv(r: MonthlyReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(("month", "kind", *_ANOMALY_HEAD))
    for a in r.anomalies:
        w.writerow((r.month, a.kind, *_anomaly_row(a)))
    return out.getvalue()
