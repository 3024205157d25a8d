"""A draft service as commented YAML, ready to paste into a config."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from gateway.scaffold.draft import KEY_PARAM, Draft, key_binds
from gateway.scaffold.names import camel

__all__ = ["render"]

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _flow(value: Any) -> str:
    """YAML flow style, as the project's configs write transforms: [cp874, {name: title}]."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if (
        isinstance(value, str)
        and _PLAIN.fullmatch(value)
        and value not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n")
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


def _query(draft: Draft) -> list[str]:
    names = [f.column for f in draft.fields if not any(f.column == j.as_name for j in draft.joins)]
    cols = list(dict.fromkeys(names))
    if draft.is_query:
        lines = ["SELECT s.*", f"  FROM ({' '.join(draft.source.split())}) s"]
        alias = "s"
    else:
        selected = [f"t.{c}" for c in cols]
        selected += [f"{j.alias}.{j.desc_column} AS {j.as_name}" for j in draft.joins]
        lines = textwrap.wrap(
            "SELECT " + ", ".join(selected), 88, subsequent_indent="       ", break_long_words=False
        )
        lines.append(f"  FROM {draft.source} t")
        alias = "t"
        for j in draft.joins:
            lines.append(
                f"  LEFT JOIN {j.table} {j.alias} ON {j.alias}.{j.ref_column} = t.{j.column}"
            )
    if draft.key is not None:
        where = f" WHERE {alias}.{draft.key.column} IN ({', '.join(key_binds(draft.key))})"
        lines += textwrap.wrap(where, 88, subsequent_indent="     ", break_long_words=False)
    return lines


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text, 92 - len(indent), initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#   "
    )


def render(draft: Draft, *, path: str | None = None) -> str:
    out: list[str] = []
    add = out.append
    what = "query" if draft.is_query else draft.source
    what = f"operation {what}" if draft.soap is not None else what
    add(f"# Drafted by `lc2-gateway scaffold` from {what} on backend {draft.backend}")
    add(f"# ({draft.sampled} rows sampled). Review it, paste `lookups:` entries under the")
    add("# config's lookups and the service under its services, then run")
    add("# `lc2-gateway check --connect` and `lc2-gateway profile`.")
    for note in draft.notes:
        add(f"# NOTE: {note}")
    if draft.lookups:
        add("lookups:")
        for name, codes in draft.lookups.items():
            add(f"  {name}:   # the codes found in the sample: write each one's description")
            for code in codes:
                quoted = json.dumps(code, ensure_ascii=False)
                add(f"    {quoted}: {quoted}")
    add("services:")
    add(f"  {draft.service}:")
    if path:
        add(f"    path: {path}")
    add(f"    description: {_flow('describe the data set (English)')}")
    add(f"    description_th: {_flow('อธิบายชุดข้อมูล')}")
    add(f"    backend: {draft.backend}")
    key = draft.key
    if key is not None:
        add("    params:")
        add(f"      {KEY_PARAM}: {{type: citizen_id, description: citizen ID (13 digits)}}")
    add("    operation:")
    if draft.soap is not None:
        element, rows = draft.soap
        add(f"      name: {draft.source}")
        if element is not None and key is not None:
            add(f'      request: {{{element}: "{{{KEY_PARAM}}}"}}')
        add(f"      rows: {rows}")
        add("      # faults: [{code: ..., action: empty}]   what the vendor's SOAP Faults mean")
        if key is not None:
            add(f"      # key {key.column}, found {draft.key_why}")
    elif key is not None:
        spelled = ", ".join(f"{s} {n}" for s, n in key.spellings.most_common())
        out.extend(
            _comment(
                f"key {key.column}, found {draft.key_why}, spelled {spelled} in the sample: "
                "each spelling found is bound as stored, so an index on the column is used",
                "      ",
            )
        )
    if draft.soap is None:
        add("      query: |")
        for line in _query(draft):
            add(f"        {line}")
    add("    output:")
    explained: set[str] = set()
    for f in draft.fields:
        if f.evidence and f.column not in explained:
            explained.add(f.column)
            out.extend(_comment(f"{f.column}: " + "; ".join(f.evidence), "      "))
        if f.transform:
            add(f"      {f.name}: {{column: {f.column}, transform: {_flow(list(f.transform))}}}")
        else:
            add(f"      {f.name}: {{column: {f.column}}}")
    add("    sandbox:")
    add("      generate: 2   # legacy-shaped test rows made from this mapping")
    if key is not None:
        add(f"      match: {{{KEY_PARAM}: {key.column}}}")
    return "\n".join(out) + "\n"


def service_name(table: str) -> str:
    return camel(table.rsplit(".", 1)[-1])
