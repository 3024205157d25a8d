"""From a backend table (or query) to a draft service: the key, the output fields, the
lookups and the query that binds the key's spellings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.adapter import Adapter, Row
from gateway.config.runtime import Backend
from gateway.scaffold.catalog import (
    Catalog,
    Column,
    columns_of,
    read_catalog,
    sample_rows,
    valid_name,
)
from gateway.scaffold.evidence import PID_NAME, ColumnEvidence, examine
from gateway.scaffold.names import camel, description_name, dopa_name

__all__ = [
    "KEY_PARAM",
    "Draft",
    "Field",
    "Join",
    "add_fields",
    "key_binds",
    "make_draft",
    "pick_key",
]

KEY_PARAM = "personalId"
_BINDS = {"plain": "", "dashed": "__dashed", "spaced": "__spaced", "padded": "__padded"}
_DESC_COLUMN = re.compile(r"(name|desc|label|text|title)", re.I)
_TEXT_TYPES = ("char", "text", "varchar", "nvarchar", "character", "string", "clob")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    column: str
    transform: tuple[str | dict[str, Any], ...]
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Join:
    alias: str
    table: str
    ref_column: str
    desc_column: str
    column: str  # the code column of the table being drafted
    as_name: str  # the description's name in the SELECT
    how: str  # "foreign key" or "a table with the same column"


@dataclass(slots=True)
class Draft:
    service: str
    backend: str
    source: str  # table name, or the --query text
    is_query: bool
    sampled: int
    columns: list[str]
    key: ColumnEvidence | None
    key_why: str = ""
    fields: list[Field] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    soap: tuple[str | None, str] | None = None  # (request element of the key, rows path)


def _declared(catalog: Catalog) -> dict[str, str]:
    return {c.name.lower(): c.type for c in catalog.columns}


def pick_key(
    evidence: Sequence[ColumnEvidence], wanted: str | None
) -> tuple[ColumnEvidence | None, str]:
    if wanted is not None:
        for ev in evidence:
            if ev.column.lower() == wanted.lower():
                return ev, "chosen with --key"
        raise ValueError(f"--key {wanted}: no such column in the sample")
    pids = [ev for ev in evidence if ev.kind == "pid"]
    if not pids:
        return None, ""
    # the most valid IDs; a name like PID or CITIZEN_ID breaks a tie
    best = max(pids, key=lambda ev: (ev.valid_pids, bool(PID_NAME.search(ev.column))))
    named = "its name and " if PID_NAME.search(best.column) else ""
    return best, f"by {named}its checksum-valid content"


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}{i}", i + 1
    taken.add(out)
    return out


def _desc_column(columns: Sequence[Column], ref: str) -> str | None:
    others = [c for c in columns if c.name.lower() != ref.lower()]
    named = [c for c in others if _DESC_COLUMN.search(c.name)]
    texty = [c for c in others if any(t in c.type for t in _TEXT_TYPES)]
    pick = named or texty or others
    return pick[0].name if pick else None


async def _code_table(
    backend: Backend, adapter: Adapter, catalog: Catalog, table: str, column: str
) -> tuple[str, str, str, str] | None:
    """(table, ref column, description column, how) for a code column, if one exists."""
    for fk in catalog.foreign_keys:
        if fk.column.lower() == column.lower():
            desc = _desc_column(
                await columns_of(backend, adapter, catalog, fk.table), fk.ref_column
            )
            if desc:
                return fk.table, fk.ref_column, desc, "foreign key"
    for other in catalog.tables:
        if other.lower() == table.lower():
            continue
        cols = (
            await columns_of(backend, adapter, catalog, other) if _plausible(other, column) else ()
        )
        same = next((c for c in cols if c.name.lower() == column.lower()), None)
        if same is not None and len(cols) <= 6:
            desc = _desc_column(cols, same.name)
            if desc:
                return other, same.name, desc, "a table with the same column"
    return None


def _plausible(table: str, column: str) -> bool:
    """Only tables whose name shares a word with the column are read (a legacy database may
    have hundreds of tables): PROV_CODE -> CODE_PROVINCE, PROVINCE."""
    words = {w for w in re.split(r"[^a-z]+", column.lower()) if len(w) >= 3}
    name = table.lower()
    return any(w in name or name.startswith(w[:4]) for w in words) or "code" in name


async def make_draft(
    backend: Backend,
    adapter: Adapter,
    *,
    service: str,
    table: str | None,
    query: str | None,
    key: str | None,
    sample: int,
) -> Draft:
    source = query if query is not None else valid_name(table or "")
    catalog = await read_catalog(backend, adapter, None if query is not None else source)
    rows: Sequence[Row] = await sample_rows(
        backend, adapter, source, sample, is_query=query is not None
    )
    columns = list(rows[0]) if rows else [c.name for c in catalog.columns]
    declared = _declared(catalog)
    evidence = [examine(c, [r.get(c) for r in rows], declared.get(c.lower(), "")) for c in columns]
    draft = Draft(service, backend.name, source, query is not None, len(rows), columns, None)
    draft.key, draft.key_why = pick_key(evidence, key)
    if draft.key is None:
        draft.notes.append("no column of citizen IDs found: give the key with --key COLUMN")
    taken: set[str] = set()
    for ev in evidence:
        codes: tuple[str, str, str, str] | None = None
        if ev.kind == "code" and ev is not draft.key and not draft.is_query:
            codes = await _code_table(backend, adapter, catalog, draft.source, ev.column)
        add_fields(draft, ev, codes, taken)
    return draft


def add_fields(
    draft: Draft,
    ev: ColumnEvidence,
    code_table: tuple[str, str, str, str] | None,
    taken: set[str],
) -> None:
    """The output fields of one column; a code's description from ``code_table`` (table,
    its code column, its description column, how it was found) or a lookup stub."""
    why = tuple(ev.evidence)
    steps = tuple(ev.transform)
    if ev is draft.key:
        draft.fields.append(Field(_unique(KEY_PARAM, taken), ev.column, ("pid",), why))
        return
    if ev.kind == "name":
        for part, name in (("title", "titleDesc"), ("first", "firstName"), ("last", "lastName")):
            chain = (*steps, {"name": part})
            draft.fields.append(Field(_unique(name, taken), ev.column, chain, why))
        return
    leaf = ev.column.rsplit(".", 1)[-1]  # a SOAP answer's nested element: owner.firstName
    base = dopa_name(leaf) or camel(leaf)
    draft.fields.append(Field(_unique(base, taken), ev.column, steps, why))
    if ev.kind != "code" or draft.is_query:
        return
    desc = description_name(base if base.endswith("Code") else f"{base}Code")
    if code_table is not None:
        ref_table, ref_col, desc_col, how = code_table
        alias = f"c{len(draft.joins) + 1}"
        as_name = f"{ev.column}_DESC"
        draft.joins.append(Join(alias, ref_table, ref_col, desc_col, ev.column, as_name, how))
        note = (f"from {ref_table}.{desc_col} ({how}); cp874 leaves decoded text as it is",)
        draft.fields.append(Field(_unique(desc, taken), as_name, ("cp874", "clean"), note))
        return
    if not ev.codes:
        return
    lookup = f"{draft.service}_{camel(leaf)}"
    draft.lookups[lookup] = list(ev.codes)
    note = ("no code table found: describe each code under lookups",)
    draft.fields.append(Field(_unique(desc, taken), ev.column, (*steps, {"lookup": lookup}), note))


def key_binds(key: ColumnEvidence) -> list[str]:
    """The placeholders of the spellings the key column holds (plain always)."""
    found = [s for s in _BINDS if s == "plain" or key.spellings.get(s)]
    return [f":{KEY_PARAM}{_BINDS[s]}" for s in found]
