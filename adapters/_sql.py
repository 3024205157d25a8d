"""What the SQL adapters share: the ``operation:`` model and placeholder compiling.

Services write queries with named placeholders (``WHERE pid = :personalId``)
whatever the database; each driver wants its own style (asyncpg ``$1``,
MySQL drivers ``%s``, sqlite3 ``?``).  The rewrite happens once at start-up.
No library does this rewrite without bringing an ORM along, so it is written
here: a small scanner that leaves quoted strings, quoted identifiers,
comments and PostgreSQL ``::`` casts untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from gateway.adapter import OptionsModel, PrepareError

__all__ = ["CompiledQuery", "SqlOperation", "compile_named", "limit_zero"]

Style = Literal["qmark", "numeric", "format"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SqlOperation(OptionsModel):
    """``operation:`` block of a service on a SQL backend."""

    query: str = Field(min_length=1, description="SQL with :name placeholders for parameters")
    max_rows: int = Field(
        default=1000, ge=1, le=100_000, description="rows returned at most per call"
    )


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    sql: str
    order: tuple[str, ...]  # parameter name for each positional placeholder
    max_rows: int

    def bind(self, params: dict[str, object] | object) -> tuple[object, ...]:
        assert isinstance(params, dict)
        return tuple(params[name] for name in self.order)


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    """Index just past the quoted run starting at ``i`` (doubled quote escapes)."""
    j = i + 1
    while j < len(sql):
        if sql[j] == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        if sql[j] == "\\" and quote == "'":
            j += 2  # MySQL backslash escapes; harmless elsewhere for placeholder finding
            continue
        j += 1
    raise PrepareError("unterminated quoted string or identifier in query", ("query",))


def compile_named(
    sql: str, style: Style, param_names: Sequence[str], *, max_rows: int = 1000
) -> CompiledQuery:
    declared = set(param_names)
    out: list[str] = []
    order: list[str] = []
    numbers: dict[str, int] = {}

    def verbatim(text: str) -> None:
        # pyformat drivers format the whole statement: a % in a literal
        # ('%Y%m%d', LIKE 'x%') or a comment must be doubled too
        out.append(text.replace("%", "%%") if style == "format" else text)

    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = _skip_quoted(sql, i, c)
            verbatim(sql[i:j])
            i = j
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            verbatim(sql[i:j])
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise PrepareError("unterminated /* comment in query", ("query",))
            verbatim(sql[i : j + 2])
            i = j + 2
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and (m := _NAME.match(sql, i + 1)):
            name = m.group(0)
            if name not in declared:
                raise PrepareError(
                    f"placeholder :{name} is not a declared parameter "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                    ("query",),
                )
            if style == "numeric":
                if name not in numbers:
                    numbers[name] = len(numbers) + 1
                    order.append(name)
                out.append(f"${numbers[name]}")
            else:
                order.append(name)
                out.append("?" if style == "qmark" else "%s")
            i = m.end()
        elif c == "%" and style == "format":
            out.append("%%")  # a literal % must be doubled for pyformat drivers
            i += 1
        elif c == "?" and style == "qmark":
            raise PrepareError("use :name placeholders, not '?'", ("query",))
        else:
            out.append(c)
            i += 1
    return CompiledQuery(sql="".join(out), order=tuple(order), max_rows=max_rows)


def limit_zero(sql: str) -> str:
    """The query wrapped so it returns its columns and no row (``check --connect``);
    every placeholder is bound to NULL, so nothing of a citizen is looked up."""
    return f"SELECT * FROM ({sql.strip().rstrip(';').rstrip()}) AS lc2_columns LIMIT 0"
