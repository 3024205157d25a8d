"""Placeholder compiling shared by the SQL adapters."""

from __future__ import annotations

import pytest

from adapters._sql import compile_named
from gateway.adapter import PrepareError


def test_numeric_style_reuses_numbers_and_keeps_casts() -> None:
    q = compile_named(
        "SELECT :a::text, :b, :a FROM t WHERE x = ':a' -- :b\n", "numeric", ["a", "b"]
    )
    assert q.sql == "SELECT $1::text, $2, $1 FROM t WHERE x = ':a' -- :b\n"
    assert q.order == ("a", "b")
    assert q.bind({"a": 1, "b": 2}) == (1, 2)


def test_qmark_style_repeats_positions() -> None:
    q = compile_named('SELECT "col:x", :a, :a /* :a */', "qmark", ["a"])
    assert q.sql == 'SELECT "col:x", ?, ? /* :a */'
    assert q.bind({"a": "v"}) == ("v", "v")


def test_format_style_doubles_every_percent() -> None:
    q = compile_named(
        "SELECT DATE_FORMAT(d, '%Y%m%d') FROM t WHERE n LIKE 'x%' AND p = :p AND r % 2 = 0 "
        "-- 50%\n",
        "format",
        ["p"],
    )
    assert q.sql == (
        "SELECT DATE_FORMAT(d, '%%Y%%m%%d') FROM t WHERE n LIKE 'x%%' AND p = %s AND r %% 2 = 0 "
        "-- 50%%\n"
    )
    assert q.sql % ("v",)  # the driver's own formatting accepts it


def test_escaped_quotes_inside_literals() -> None:
    q = compile_named("SELECT 'it''s :x', 'a\\':b', :x", "qmark", ["x"])
    assert q.sql == "SELECT 'it''s :x', 'a\\':b', ?"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT :nope", "placeholder :nope is not a declared parameter"),
        ("SELECT 'open", "unterminated"),
        ("SELECT 1 /* open", "unterminated"),
        ("SELECT ?", "use :name placeholders"),
    ],
)
def test_bad_queries_are_refused_at_start_up(sql: str, message: str) -> None:
    with pytest.raises(PrepareError, match=message):
        compile_named(sql, "qmark", ["a"])
