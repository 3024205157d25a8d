"""PostgreSQL adapter against a real server (database from the ``pg_server`` fixture)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from adapters._sql import SqlOperation
from adapters.postgresql import FACTORY, PostgresAdapter, PostgresOptions
from gateway.adapter import (
    BackendError,
    BackendLimits,
    BackendUnavailable,
    DescribesResult,
    PoolStats,
)
from tests.support import wait_until

LIMITS = BackendLimits(pool_size=2, acquire_timeout=2.0, query_timeout=3.0)
APP = "lc2gw-pg-test"

PERSON_ROWS = [
    # pid CHAR(17) as legacy systems keep it: dashed, or shorter and blank-padded
    ("1-2345-67890-12-1", "สมชาย", "ใจดี", datetime.date(2567, 2, 28), "29022567"),
    ("3100600123456", "นางสาวสมหญิง", "รักชาติ", None, "00002567"),
    ("1-1111-11111-11-1", "ทองดี", "มีสุข", datetime.date(2566, 1, 15), "15012566"),
]


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_dsn(pg_server: Any) -> Iterator[str]:
    """The session database with legacy-shaped tables, dropped after the module."""

    async def create() -> None:
        conn = await asyncpg.connect(pg_server.dsn, timeout=5)
        try:
            await conn.execute(
                """
                CREATE TABLE person (
                    pid CHAR(17) NOT NULL,
                    first_name TEXT,
                    last_name VARCHAR(60),
                    birth_be DATE,          -- BE year stored as if it were CE
                    birth_char CHAR(8)      -- DDMMYYYY, BE
                );
                CREATE TABLE many (n INTEGER);
                INSERT INTO many SELECT generate_series(1, 50);
                """
            )
            await conn.executemany("INSERT INTO person VALUES ($1, $2, $3, $4, $5)", PERSON_ROWS)
        finally:
            await conn.close()

    asyncio.run(create())
    yield pg_server.dsn
    asyncio.run(_admin(pg_server.dsn, "DROP TABLE IF EXISTS person, many"))


def _options(dsn: str, **extra: Any) -> PostgresOptions:
    return PostgresOptions.model_validate(
        {"dsn": dsn, "server_settings": {"application_name": APP}, **extra}
    )


def _op(query: str, *params: str, max_rows: int = 1000) -> Any:
    return FACTORY.prepare(None, SqlOperation(query=query, max_rows=max_rows), params)


@pytest.fixture
async def adapter(pg_dsn: str) -> AsyncIterator[PostgresAdapter]:
    a = FACTORY.create("pg", _options(pg_dsn), LIMITS)
    await a.open()
    try:
        yield a
    finally:
        await a.close()


# --- options ---------------------------------------------------------------


def test_dsn_with_password_is_rejected() -> None:
    for dsn in (
        "postgresql://lc2:secret@db.example/legacy",
        "postgres://lc2:@db.example:5432/legacy",
        "postgresql://lc2@db.example/legacy?password=secret",
    ):
        with pytest.raises(ValidationError, match="`password` option"):
            PostgresOptions(dsn=dsn)
    opts = PostgresOptions.model_validate(
        {"dsn": "postgresql://lc2@[::1]:5432/legacy", "password": "secret"}
    )
    assert opts.password is not None and opts.password.get_secret_value() == "secret"
    assert "secret" not in repr(opts)


def test_options_defaults_and_read_only_settings() -> None:
    opts = PostgresOptions(dsn="postgresql://lc2@127.0.0.1/legacy")
    assert opts.read_only and opts.statement_cache_size == 100 and opts.probe_query == "SELECT 1"
    assert opts.effective_server_settings() == {
        "application_name": "lc2-gateway",
        "default_transaction_read_only": "on",
    }
    with pytest.raises(ValidationError, match="contradicts read_only"):
        PostgresOptions.model_validate(
            {
                "dsn": "postgresql://lc2@127.0.0.1/legacy",
                "server_settings": {"default_transaction_read_only": "off"},
            }
        )
    with pytest.raises(ValidationError):
        PostgresOptions.model_validate({"dsn": "mysql://lc2@127.0.0.1/legacy"})
    with pytest.raises(ValidationError):
        PostgresOptions.model_validate({"dsn": "postgresql://x@h/d", "unknown": 1})


def test_factory_prepares_numeric_placeholders() -> None:
    assert FACTORY.type_name == "postgresql"
    op = _op(
        "SELECT * FROM person WHERE pid = :pid OR trim(pid) = :pid AND x = :other", "pid", "other"
    )
    assert op.sql == "SELECT * FROM person WHERE pid = $1 OR trim(pid) = $1 AND x = $2"
    assert op.bind({"pid": "a", "other": "b"}) == ("a", "b")


# --- fetching --------------------------------------------------------------


async def test_fetch_returns_dict_rows_with_driver_values(adapter: PostgresAdapter) -> None:
    op = _op(
        "SELECT pid, first_name, last_name, birth_be, birth_char FROM person "
        "WHERE replace(trim(pid), '-', '') = :personalId",
        "personalId",
    )
    rows = await adapter.fetch(op, {"personalId": "1234567890121"})
    assert rows == [
        {
            "pid": "1-2345-67890-12-1",
            "first_name": "สมชาย",
            "last_name": "ใจดี",
            # a DATE with a BE year comes back as a date in year 2567, untouched
            "birth_be": datetime.date(2567, 2, 28),
            "birth_char": "29022567",
        }
    ]
    assert type(rows[0]) is dict

    rows = await adapter.fetch(op, {"personalId": "3100600123456"})
    # CHAR(n) keeps its blank padding; NULL is None
    assert rows == [
        {
            "pid": "3100600123456    ",
            "first_name": "นางสาวสมหญิง",
            "last_name": "รักชาติ",
            "birth_be": None,
            "birth_char": "00002567",
        }
    ]


async def test_no_match_is_an_empty_list(adapter: PostgresAdapter) -> None:
    op = _op("SELECT * FROM person WHERE trim(pid) = :pid", "pid")
    assert await adapter.fetch(op, {"pid": "0000000000000"}) == []


async def test_placeholder_used_twice(adapter: PostgresAdapter) -> None:
    op = _op(
        "SELECT first_name FROM person WHERE trim(pid) = :pid OR replace(pid, '-', '') = :pid",
        "pid",
    )
    assert op.sql.count("$1") == 2
    assert await adapter.fetch(op, {"pid": "3100600123456"}) == [{"first_name": "นางสาวสมหญิง"}]


async def test_percent_literal_and_cast_survive_compile(adapter: PostgresAdapter) -> None:
    op = _op(
        "SELECT first_name::text AS name, '100%' AS pct, 'a:b' AS colon FROM person "
        "WHERE first_name LIKE '%' || :fragment || '%' ORDER BY pid",
        "fragment",
    )
    assert "::text" in op.sql and "'100%'" in op.sql and "$1" in op.sql
    rows = await adapter.fetch(op, {"fragment": "สม"})
    assert rows == [
        {"name": "สมชาย", "pct": "100%", "colon": "a:b"},
        {"name": "นางสาวสมหญิง", "pct": "100%", "colon": "a:b"},
    ]


async def test_probe_and_pool_stats(adapter: PostgresAdapter) -> None:
    assert adapter.pool_stats() == PoolStats(size=0, in_use=0)  # lazy: nothing yet
    await adapter.probe()
    assert adapter.pool_stats() == PoolStats(size=1, in_use=0)

    slow = asyncio.create_task(adapter.fetch(_op("SELECT pg_sleep(0.5) AS s"), {}))
    await wait_until(lambda: adapter.pool_stats().in_use == 1)
    assert adapter.pool_stats() == PoolStats(size=1, in_use=1)
    await adapter.probe()  # the second connection of the pool
    assert adapter.pool_stats() == PoolStats(size=2, in_use=1)
    assert await slow == [{"s": None}]
    assert adapter.pool_stats() == PoolStats(size=2, in_use=0)


async def test_broken_probe_query_is_a_backend_error(pg_dsn: str) -> None:
    a = FACTORY.create("pg", _options(pg_dsn, probe_query="SELECT FROM nowhere_table"), LIMITS)
    await a.open()
    try:
        with pytest.raises(BackendError, match="42P01"):
            await a.probe()
    finally:
        await a.close()


# --- read only -------------------------------------------------------------


async def test_read_only_refuses_writes(adapter: PostgresAdapter, pg_dsn: str) -> None:
    op = _op("INSERT INTO person (pid) VALUES (:pid) RETURNING pid", "pid")
    with pytest.raises(BackendError, match="25006") as err:
        await adapter.fetch(op, {"pid": "9999999999999"})
    assert "9999999999999" not in str(err.value)
    conn = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        assert await conn.fetchval("SELECT count(*) FROM person WHERE pid = '9999999999999'") == 0
    finally:
        await conn.close()
    # the session default survives asyncpg's RESET ALL when a connection is reused
    show = _op("SELECT current_setting('default_transaction_read_only') AS ro")
    assert await adapter.fetch(show, {}) == [{"ro": "on"}]
    assert await adapter.fetch(show, {}) == [{"ro": "on"}]


async def test_read_only_false_allows_writes(pg_dsn: str) -> None:
    a = FACTORY.create("pg", _options(pg_dsn, read_only=False), LIMITS)
    await a.open()
    try:
        show = _op("SELECT current_setting('default_transaction_read_only') AS ro")
        assert await a.fetch(show, {}) == [{"ro": "off"}]
    finally:
        await a.close()


@pytest.mark.parametrize("reset_session", [False, True])
async def test_session_state_between_calls(pg_dsn: str, reset_session: bool) -> None:
    """Without the reset query a setting a query makes stays on its session; with
    reset_session it is gone at release. Read-only stays on either way."""
    one = BackendLimits(pool_size=1, acquire_timeout=2.0, query_timeout=3.0)
    a = FACTORY.create("pg", _options(pg_dsn, reset_session=reset_session), one)
    await a.open()
    try:
        await a.fetch(_op("SELECT set_config('lc2.marker', 'left over', false) AS v"), {})
        show = _op(
            "SELECT current_setting('lc2.marker', true) AS marker, "
            "current_setting('transaction_read_only') AS ro"
        )
        rows = await a.fetch(show, {})
        assert rows == [{"marker": "" if reset_session else "left over", "ro": "on"}]
    finally:
        await a.close()


# --- errors ----------------------------------------------------------------


async def test_syntax_error_is_a_backend_error_without_parameters(
    adapter: PostgresAdapter,
) -> None:
    op = _op("SELEC first_name FROM person WHERE pid = :pid", "pid")
    with pytest.raises(BackendError) as err:
        await adapter.fetch(op, {"pid": "1234567890121"})
    assert "42601" in str(err.value) and "1234567890121" not in str(err.value)


@pytest.mark.parametrize(
    ("query", "value", "sqlstate"),
    [
        # the server quotes the bad value in its message
        ("SELECT CAST(CAST(:v AS text) AS date) AS d", "2567-02-29", "22008"),
        ("SELECT CAST(CAST(:v AS text) AS int) AS d", "x1234567890121", "22P02"),
        ("SELECT CAST(CAST(:v AS text) AS int) AS d", "1234567890121", "22003"),
        # asyncpg quotes the argument it can not encode
        ("SELECT :v::int AS d", "1234567890121", "22000"),
    ],
)
async def test_data_errors_never_quote_the_parameter(
    adapter: PostgresAdapter, query: str, value: str, sqlstate: str
) -> None:
    with pytest.raises(BackendError) as err:
        await adapter.fetch(_op(query, "v"), {"v": value})
    assert sqlstate in str(err.value)
    assert value not in str(err.value) and value[:10] not in str(err.value)


async def test_unknown_database_is_unavailable(pg_server: Any) -> None:
    base = pg_server.dsn.rpartition("/")[0]
    a = FACTORY.create("pg", _options(f"{base}/no_such_database_lc2"), LIMITS)
    await a.open()
    try:
        with pytest.raises(BackendUnavailable, match="3D000"):
            await a.probe()
    finally:
        await a.close()


async def test_connection_killed_by_server_is_unavailable(
    adapter: PostgresAdapter, pg_dsn: str
) -> None:
    slow = asyncio.create_task(adapter.fetch(_op("SELECT pg_sleep(2)"), {}))
    await wait_until(lambda: adapter.pool_stats().in_use == 1)
    conn = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        for _ in range(100):  # until the statement shows in pg_stat_activity
            if await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep(2)%'",
                APP,
            ):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the statement never showed in pg_stat_activity")
    finally:
        await conn.close()
    # asyncpg reports the administrator's termination as a lost connection (08003)
    with pytest.raises(BackendUnavailable, match="08003"):
        await slow
    # the pool replaces the dead connection
    assert await adapter.fetch(_op("SELECT 1 AS one"), {}) == [{"one": 1}]


async def test_result_columns_come_from_a_prepared_statement(adapter: PostgresAdapter) -> None:
    op = _op('SELECT pid AS "REG_NO", first_name FROM person WHERE trim(pid) = :pid;', "pid")
    assert isinstance(adapter, DescribesResult)
    assert await adapter.result_columns(op) == ["REG_NO", "first_name"]
    with pytest.raises(BackendError, match="reg_num"):
        await adapter.result_columns(_op("SELECT reg_num FROM person WHERE pid = :pid", "pid"))
