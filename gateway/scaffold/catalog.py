"""What ``scaffold`` reads of a SQL backend: columns, foreign keys, tables and a sample.

Everything goes through the backend's own adapter (read-only sessions, its
timeouts), with the catalog queries of the database the backend turns out to
be.  An ODBC backend may be any of them, so its flavours are tried in turn.
The sample is the first N rows the database hands out, without ORDER BY, so
it stops after N rows instead of sorting the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters._sql import SqlOperation
from gateway.adapter import Adapter, BackendError, Row
from gateway.config.runtime import Backend

__all__ = [
    "Catalog",
    "Column",
    "ForeignKey",
    "columns_of",
    "read_catalog",
    "sample_rows",
    "valid_name",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as the catalog spells it, lower case; "" when unknown


@dataclass(frozen=True, slots=True)
class ForeignKey:
    column: str
    table: str
    ref_column: str


@dataclass(frozen=True, slots=True)
class _Flavour:
    columns: str  # :t is the table name
    foreign_keys: str
    tables: str


@dataclass(frozen=True, slots=True)
class Catalog:
    columns: tuple[Column, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    tables: tuple[str, ...] = ()
    flavour: _Flavour | None = field(default=None, repr=False)


_POSTGRES = _Flavour(
    columns="SELECT column_name, data_type FROM information_schema.columns "
    "WHERE lower(table_name) = lower(:t) AND table_schema = ANY (current_schemas(false)) "
    "ORDER BY ordinal_position",
    foreign_keys="SELECT kcu.column_name AS col, ccu.table_name AS ref_table, "
    "ccu.column_name AS ref_col "
    "FROM information_schema.table_constraints tc "
    "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
    "AND kcu.table_schema = tc.table_schema "
    "JOIN information_schema.constraint_column_usage ccu "
    "ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema "
    "WHERE tc.constraint_type = 'FOREIGN KEY' AND lower(tc.table_name) = lower(:t)",
    tables="SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = ANY (current_schemas(false))",
)
_MYSQL = _Flavour(
    columns="SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t ORDER BY ORDINAL_POSITION",
    foreign_keys="SELECT COLUMN_NAME AS col, REFERENCED_TABLE_NAME AS ref_table, "
    "REFERENCED_COLUMN_NAME AS ref_col "
    "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
    "AND TABLE_NAME = :t AND REFERENCED_TABLE_NAME IS NOT NULL",
    tables="SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
)
_SQLITE = _Flavour(
    columns="SELECT name, type FROM pragma_table_info(:t) ORDER BY cid",
    # aliased: a row is a mapping, so two columns of one name would be one
    foreign_keys='SELECT "from" AS col, "table" AS ref_table, "to" AS ref_col '
    "FROM pragma_foreign_key_list(:t)",
    tables="SELECT name FROM sqlite_master WHERE type IN ('table', 'view')",
)
# SQL Server and others: the standard views, without a foreign-key reading.
_STANDARD = _Flavour(
    columns="SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_name = :t ORDER BY ordinal_position",
    foreign_keys="",
    tables="SELECT table_name FROM information_schema.tables",
)
_FLAVOURS: Mapping[str, tuple[_Flavour, ...]] = {
    "postgresql": (_POSTGRES,),
    "mysql": (_MYSQL,),
    "sqlite": (_SQLITE,),
    "odbc": (_MYSQL, _POSTGRES, _SQLITE, _STANDARD),
}


def valid_name(name: str) -> str:
    """A table or column name as the operator typed it; never quoted into SQL otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain table name (letters, digits, _ and one dot)")
    return name


async def _query(
    backend: Backend, adapter: Adapter, sql: str, params: Mapping[str, object], max_rows: int
) -> Sequence[Row]:
    op = backend.factory.prepare(
        backend.options, SqlOperation(query=sql, max_rows=max_rows), list(params)
    )
    return await adapter.fetch(op, params)


def _cells(row: Row) -> list[Any]:
    return list(row.values())


async def read_catalog(backend: Backend, adapter: Adapter, table: str | None) -> Catalog:
    """The table's columns and foreign keys and the database's tables; an empty catalog
    where no flavour answers (a view through a driver without catalog views): the
    sample's column names then stand alone."""
    for flavour in _FLAVOURS.get(backend.type, ()):
        try:
            tables = tuple(
                str(_cells(r)[0]) for r in await _query(backend, adapter, flavour.tables, {}, 5000)
            )
            if table is None:
                return Catalog(tables=tables)
            columns = await _columns(backend, adapter, flavour, table)
            if not columns:
                continue
        except BackendError:
            continue
        keys: list[ForeignKey] = []
        if flavour.foreign_keys:
            try:
                for r in await _query(backend, adapter, flavour.foreign_keys, {"t": table}, 500):
                    col, ref_table, ref_col = (str(c) for c in _cells(r)[:3])
                    keys.append(ForeignKey(col, ref_table, ref_col))
            except BackendError:
                pass
        return Catalog(tuple(columns), tuple(keys), tables, flavour)
    return Catalog()


async def columns_of(
    backend: Backend, adapter: Adapter, catalog: Catalog, table: str
) -> tuple[Column, ...]:
    """Another table's columns (a code table's), read only when asked for."""
    if catalog.flavour is None or not _NAME.fullmatch(table):
        return ()
    try:
        return await _columns(backend, adapter, catalog.flavour, table)
    except BackendError:
        return ()


async def _columns(
    backend: Backend, adapter: Adapter, flavour: _Flavour, table: str
) -> tuple[Column, ...]:
    rows = await _query(backend, adapter, flavour.columns, {"t": table}, 2000)
    return tuple(Column(str(_cells(r)[0]), str(_cells(r)[1] or "").lower()) for r in rows)


async def sample_rows(
    backend: Backend, adapter: Adapter, source: str, n: int, *, is_query: bool
) -> Sequence[Row]:
    """At most ``n`` rows of a table or a query: LIMIT, else TOP (SQL Server)."""
    inner = f"({source}) scaffold_sample" if is_query else source
    last: BackendError | None = None
    for sql in (f"SELECT * FROM {inner} LIMIT {n}", f"SELECT TOP {n} * FROM {inner}"):
        try:
            return await _query(backend, adapter, sql, {}, n)
        except BackendError as exc:
            last = exc
    assert last is not None
    raise last
