"""A profile as JSON (for scripts), Markdown (for a ticket) or HTML (for people: small
inline bar charts, no external asset, so the file can be mailed or attached)."""

from __future__ import annotations

import html
import json
from typing import Any

from gateway.profile.tally import Tally

__all__ = ["as_dict", "render"]

METRICS = (
    "nulls",
    "failures",
    "invalid_checksums",
    "implausible_dates",
    "missing_codes",
    "mojibake",
)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 3) if whole else 0.0


def as_dict(
    tally: Tally, *, service: str, backend: str, interrupted: bool, whole: bool
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, ft in tally.fields.items():
        fields[name] = {
            "rows": ft.rows,
            "nulls": ft.nulls,
            "failures": sum(ft.failures.values()),
            "failure_reasons": dict(ft.failures.most_common()),
            "failure_examples": ft.examples,
            "invalid_checksums": ft.invalid_checksums,
            "checksum_examples": ft.checksum_examples,
            "implausible_dates": ft.implausible_dates,
            "future_dates": ft.future,
            "dates_before_1900": ft.before_1900,
            "born_after_registered": ft.born_after_registered,
            "missing_codes": sum(ft.missing_codes.values()),
            "missing_code_values": dict(ft.missing_codes.most_common()),
            "mojibake": ft.mojibake,
        }
    return {
        "service": service,
        "backend": backend,
        "rows": tally.rows,
        "scope": "all rows" if whole and not interrupted else "sample",
        "interrupted": interrupted,
        "clean_rows": tally.clean,
        "clean_share": _pct(tally.clean, tally.rows),
        "rows_with": {m: tally.rows_with.get(m, 0) for m in METRICS if m != "nulls"},
        "citizens": {"column": tally.key, **tally.citizen_counts()},
        "fields": fields,
    }


def _markdown(d: dict[str, Any]) -> str:
    out = [
        f"# Data profile of `{d['service']}` (backend `{d['backend']}`)",
        "",
        f"{d['rows']} rows ({d['scope']}{', stopped with Ctrl-C' if d['interrupted'] else ''}); "
        f"**{d['clean_share']}%** map clean ({d['clean_rows']} rows).",
        "",
    ]
    c = d["citizens"]
    if c["column"]:
        out += [
            f"Citizens (`{c['column']}`): {c['distinct']} distinct, {c['with_several_rows']} "
            f"with several rows, {c['several_spellings']} spelled several ways.",
            "",
        ]
    out += [
        "| field | rows | nulls | failures | invalid IDs | implausible dates | missing codes "
        "| mojibake |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in d["fields"].items():
        out.append(
            f"| {name} | {f['rows']} | {f['nulls']} | {f['failures']} | {f['invalid_checksums']} "
            f"| {f['implausible_dates']} | {f['missing_codes']} | {f['mojibake']} |"
        )
    notes = _notes(d)
    if notes:
        out += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _notes(d: dict[str, Any]) -> list[str]:
    notes = []
    for name, f in d["fields"].items():
        for reason, n in f["failure_reasons"].items():
            ex = ", ".join(f["failure_examples"])
            notes.append(f"{name}: {n} × {reason} (e.g. {ex})")
        if f["invalid_checksums"]:
            ex = ", ".join(f["checksum_examples"])
            notes.append(f"{name}: {f['invalid_checksums']} fail the checksum (e.g. {ex})")
        if f["implausible_dates"]:
            notes.append(
                f"{name}: {f['future_dates']} in the future, {f['dates_before_1900']} before "
                f"1900, {f['born_after_registered']} born after registered"
            )
        if f["missing_codes"]:
            codes = ", ".join(f"{k} ({v})" for k, v in f["missing_code_values"].items())
            notes.append(f"{name}: codes missing from the lookup: {codes}")
        if f["mojibake"]:
            notes.append(f"{name}: {f['mojibake']} still look like mojibake after the chain")
    return notes


def _bar(part: int, whole: int, colour: str) -> str:
    width = 120 * part / whole if whole else 0
    return (
        f'<svg width="122" height="10" role="img"><rect width="120" height="10" fill="#eee"/>'
        f'<rect width="{width:.1f}" height="10" fill="{colour}"/></svg>'
    )


def _html(d: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for name, f in d["fields"].items():
        bad = f["failures"] + f["invalid_checksums"] + f["implausible_dates"]
        bad += f["missing_codes"] + f["mojibake"]
        rows.append(
            f"<tr><td>{e(name)}</td><td>{f['rows']}</td>"
            f"<td>{f['nulls']} {_bar(f['nulls'], f['rows'], '#999')}</td>"
            f"<td>{bad} {_bar(bad, f['rows'], '#c33')}</td>"
            f"<td>{f['failures']}</td><td>{f['invalid_checksums']}</td>"
            f"<td>{f['implausible_dates']}</td><td>{f['missing_codes']}</td>"
            f"<td>{f['mojibake']}</td></tr>"
        )
    notes = "".join(f"<li>{e(n)}</li>" for n in _notes(d))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>profile {e(d['service'])}</title><style>body{{font-family:sans-serif}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "</style></head><body>"
        f"<h1>Data profile of {e(d['service'])}</h1>"
        f"<p>{d['rows']} rows ({e(d['scope'])}{', stopped' if d['interrupted'] else ''}); "
        f"<b>{d['clean_share']}%</b> map clean {_bar(d['clean_rows'], d['rows'], '#3a3')}</p>"
        "<table><tr><th>field</th><th>rows</th><th>nulls</th><th>findings</th>"
        "<th>failures</th><th>invalid IDs</th><th>implausible dates</th>"
        f"<th>missing codes</th><th>mojibake</th></tr>{''.join(rows)}</table>"
        f"<ul>{notes}</ul></body></html>\n"
    )


def render(d: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(d, ensure_ascii=False, indent=1) + "\n"
    if fmt == "html":
        return _html(d)
    return _markdown(d)
