"""MariaDB/MySQL adapter against a real server (database from the ``mysql_server`` fixture)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncmy
import pytest
from pydantic import ValidationError

from adapters._sql import SqlOperation
from adapters.mysql import FACTORY, MysqlAdapter, MysqlOptions
from gateway.adapter import (
    BackendError,
    BackendLimits,
    BackendUnavailable,
    DescribesResult,
    PoolStats,
)
from tests.support import wait_until

LIMITS = BackendLimits(pool_size=2, acquire_timeout=2.0, query_timeout=3.0)

# TIS-620 (cp874) bytes as an old Windows application wrote them into latin1 columns
RAW_SOMCHAI = "นายสมชาย ใจดี".encode("cp874")
# cp874 punctuation in 0x80-0x9F: smart quotes 0x93/0x94, ellipsis 0x85
RAW_SOMYING = "สมหญิง “ดี” …".encode("cp874")


async def _connect(server: Any, **extra: Any) -> Any:
    return await asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=server.database,
        connect_timeout=5,
        autocommit=True,
        **extra,
    )


async def _admin(server: Any, sql: str, args: Any = None) -> list[Any]:
    conn = await _connect(server)
    try:
        cur = conn.cursor()
        await cur.execute(sql, args)
        rows: list[Any] = await cur.fetchall()
        return rows
    finally:
        await conn.ensure_closed()


@pytest.fixture(scope="module")
def db(mysql_server: Any) -> Iterator[Any]:
    """The session database with legacy-shaped tables, dropped after the module."""

    async def create() -> None:
        conn = await _connect(mysql_server)
        try:
            cur = conn.cursor()
            await cur.execute("SET SESSION sql_mode = ''")  # legacy zero dates
            await cur.execute(
                """
                CREATE TABLE person (
                    pid CHAR(17) NOT NULL,
                    name_latin1 VARCHAR(80) CHARACTER SET latin1,  -- raw TIS-620 bytes
                    name_tis620 VARCHAR(80) CHARACTER SET tis620,
                    birth_be DATE,                                 -- BE year as if CE
                    birth_char CHAR(8)                             -- DDMMYYYY, BE
                ) CHARACTER SET utf8mb4
                """
            )
            await cur.executemany(
                "INSERT INTO person VALUES (%s, %s, %s, %s, %s)",
                [
                    ("1-2345-67890-12-1", RAW_SOMCHAI, "นายสมชาย ใจดี", "2567-02-28", "29022567"),
                    ("3100600123456", RAW_SOMYING, "นางสาวสมหญิง รักชาติ", "2567-01-00", "00012567"),
                    ("1-1111-11111-11-1", None, None, "0000-00-00", "00000000"),
                ],
            )
            await cur.execute("CREATE TABLE many (n INT)")
            await cur.executemany("INSERT INTO many VALUES (%s)", [(n,) for n in range(1, 51)])
        finally:
            await conn.ensure_closed()

    asyncio.run(create())
    yield mysql_server
    asyncio.run(_admin(mysql_server, "DROP TABLE IF EXISTS person, many"))


def _options(server: Any, **extra: Any) -> MysqlOptions:
    return MysqlOptions.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": server.user,
            "password": server.password or None,
            "database": server.database,
            **extra,
        }
    )


def _op(query: str, *params: str, max_rows: int = 1000) -> Any:
    return FACTORY.prepare(None, SqlOperation(query=query, max_rows=max_rows), params)


@pytest.fixture
async def adapter(db: Any) -> AsyncIterator[MysqlAdapter]:
    a = FACTORY.create("my", _options(db), LIMITS)
    await a.open()
    try:
        yield a
    finally:
        await a.close()


async def _running(server: Any, marker: str) -> int:
    rows = await _admin(
        server,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
        (f"%{marker}%",),
    )
    return int(rows[0][0])


async def _wait_gone(server: Any, marker: str) -> None:
    for _ in range(40):
        if not await _running(server, marker):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{marker} still running on the server after 2 s")


# --- options ---------------------------------------------------------------


def test_options() -> None:
    opts = MysqlOptions.model_validate(
        {"host": "db", "user": "lc2", "password": "secret", "database": "fisher"}
    )
    assert (opts.port, opts.charset, opts.connect_timeout, opts.read_only) == (
        3306,
        "utf8mb4",
        5,
        True,
    )
    assert opts.init_command is None and opts.probe_query == "SELECT 1"
    assert "secret" not in repr(opts)
    MysqlOptions.model_validate({"host": "db", "user": "u", "database": "d", "charset": "tis620"})
    with pytest.raises(ValidationError, match="unknown MySQL charset"):
        MysqlOptions.model_validate({"host": "db", "user": "u", "database": "d", "charset": "x"})
    with pytest.raises(ValidationError):
        MysqlOptions.model_validate({"host": "db", "user": "u", "database": "d", "dsn": "x"})
    with pytest.raises(ValidationError):
        MysqlOptions.model_validate({"host": "db", "user": "u", "database": "d", "port": 0})


def test_factory_prepares_format_placeholders() -> None:
    assert FACTORY.type_name == "mysql"
    op = _op("SELECT DATE_FORMAT(d, '%Y') FROM t WHERE a = :x OR b = :x", "x")
    assert op.sql == "SELECT DATE_FORMAT(d, '%%Y') FROM t WHERE a = %s OR b = %s"
    assert op.bind({"x": "v"}) == ("v", "v")


# --- fetching --------------------------------------------------------------


async def test_fetch_returns_dict_rows_with_driver_values(adapter: MysqlAdapter) -> None:
    op = _op(
        "SELECT pid, name_latin1, name_tis620, birth_be, birth_char, HEX(name_latin1) AS hex "
        "FROM person WHERE REPLACE(TRIM(pid), '-', '') = :personalId",
        "personalId",
    )
    rows = await adapter.fetch(op, {"personalId": "1234567890121"})
    assert rows == [
        {
            "pid": "1-2345-67890-12-1",
            # latin1 column: the server decodes the TIS-620 bytes as MySQL latin1
            # (= Windows-1252), so the driver returns this mojibake str
            "name_latin1": "¹ÒÂÊÁªÒÂ ã¨´Õ",
            "name_tis620": "นายสมชาย ใจดี",
            # a DATE with a BE year comes back as a date in year 2567
            "birth_be": datetime.date(2567, 2, 28),
            "birth_char": "29022567",
            "hex": RAW_SOMCHAI.hex().upper(),
        }
    ]
    assert type(rows[0]) is dict
    name = rows[0]["name_latin1"]
    assert isinstance(name, str)
    assert name.encode("cp1252") == name.encode("latin1") == RAW_SOMCHAI
    assert name.encode("cp1252").decode("cp874") == "นายสมชาย ใจดี"


async def test_latin1_mojibake_with_cp874_punctuation(adapter: MysqlAdapter) -> None:
    op = _op("SELECT pid, name_latin1, birth_be FROM person WHERE pid = :pid", "pid")
    rows = await adapter.fetch(op, {"pid": "3100600123456"})
    # CHAR(n) loses its trailing blanks in MySQL (unlike PostgreSQL); an
    # unknown day in a DATE ('2567-01-00') comes back as str, not as a date
    assert rows == [
        {"pid": "3100600123456", "name_latin1": "ÊÁË\xadÔ§ “´Õ” …", "birth_be": "2567-01-00"}
    ]
    name = rows[0]["name_latin1"]
    assert isinstance(name, str)
    # bytes 0x80-0x9F come back as their cp1252 characters: latin1 can not re-encode them
    assert name.encode("cp1252") == RAW_SOMYING
    with pytest.raises(UnicodeEncodeError):
        name.encode("latin1")
    assert name.encode("cp1252").decode("cp874") == "สมหญิง “ดี” …"


async def test_zero_date_and_nulls(adapter: MysqlAdapter) -> None:
    op = _op("SELECT name_latin1, name_tis620, birth_be FROM person WHERE pid = :pid", "pid")
    rows = await adapter.fetch(op, {"pid": "1-1111-11111-11-1"})
    assert rows == [{"name_latin1": None, "name_tis620": None, "birth_be": "0000-00-00"}]


async def test_bytes_parameter_against_latin1_column(adapter: MysqlAdapter) -> None:
    # the pitfall of aiomysql: asyncmy sends bytes (as a _binary literal)
    op = _op("SELECT pid FROM person WHERE name_latin1 = :raw", "raw")
    assert await adapter.fetch(op, {"raw": RAW_SOMYING}) == [{"pid": "3100600123456"}]
    # and the mojibake str matches too
    assert await adapter.fetch(op, {"raw": RAW_SOMYING.decode("cp1252")}) == [
        {"pid": "3100600123456"}
    ]


async def test_thai_parameter_against_tis620_column(adapter: MysqlAdapter) -> None:
    op = _op("SELECT pid FROM person WHERE name_tis620 = :name", "name")
    assert await adapter.fetch(op, {"name": "นายสมชาย ใจดี"}) == [{"pid": "1-2345-67890-12-1"}]
    # a character tis620 can not hold makes the comparison itself an error
    with pytest.raises(BackendError, match="1267") as err:
        await adapter.fetch(op, {"name": "สมชาย “ใจดี”"})
    assert "สมชาย" not in str(err.value)


async def test_tis620_text_lacks_cp874_extras(adapter: MysqlAdapter) -> None:
    # MariaDB's tis620 maps 0x80-0x9F to C1 controls (not cp874's ellipsis and
    # smart quotes) and has no character for 0xA0 (cp874's no-break space)
    op = _op("SELECT CONVERT(:raw USING tis620) AS t", "raw")
    rows = await adapter.fetch(op, {"raw": "“สม” …\xa0".encode("cp874")})
    assert rows == [{"t": "\x93สม\x94 \x85\ufffd"}]


async def test_no_match_is_an_empty_list(adapter: MysqlAdapter) -> None:
    op = _op("SELECT * FROM person WHERE pid = :pid", "pid")
    assert await adapter.fetch(op, {"pid": "0000000000000"}) == []


async def test_placeholder_used_twice(adapter: MysqlAdapter) -> None:
    op = _op("SELECT pid FROM person WHERE pid = :pid OR REPLACE(pid, '-', '') = :pid", "pid")
    assert op.sql.count("%s") == 2
    assert await adapter.fetch(op, {"pid": "1234567890121"}) == [{"pid": "1-2345-67890-12-1"}]


async def test_percent_literals_survive_compile(adapter: MysqlAdapter) -> None:
    op = _op(
        "SELECT DATE_FORMAT(birth_be, '%Y%m%d') AS ymd, '100%' AS pct, 'a:b' AS colon "
        "FROM person WHERE name_tis620 LIKE CONCAT('%', :fragment, '%') ORDER BY pid",
        "fragment",
    )
    rows = await adapter.fetch(op, {"fragment": "สมชาย"})
    assert rows == [{"ymd": "25670228", "pct": "100%", "colon": "a:b"}]
    # and with no parameter at all
    assert await adapter.fetch(_op("SELECT '50%' AS pct"), {}) == [{"pct": "50%"}]


async def test_probe_and_pool_stats(adapter: MysqlAdapter) -> None:
    assert adapter.pool_stats() == PoolStats(size=0, in_use=0)  # lazy: nothing yet
    await adapter.probe()
    assert adapter.pool_stats() == PoolStats(size=1, in_use=0)

    slow = asyncio.create_task(adapter.fetch(_op("SELECT SLEEP(0.5) AS s"), {}))
    await wait_until(lambda: adapter.pool_stats().in_use == 1)
    assert adapter.pool_stats() == PoolStats(size=1, in_use=1)
    await adapter.probe()  # opens the second connection of the pool
    assert adapter.pool_stats() == PoolStats(size=2, in_use=1)
    assert await slow == [{"s": 0}]
    assert adapter.pool_stats() == PoolStats(size=2, in_use=0)


async def test_broken_probe_query_is_a_backend_error(db: Any) -> None:
    a = FACTORY.create("my", _options(db, probe_query="SELECT * FROM nowhere_table"), LIMITS)
    await a.open()
    try:
        with pytest.raises(BackendError, match="1146"):
            await a.probe()
    finally:
        await a.close()


# --- read only and init_command ---------------------------------------------


async def test_read_only_refuses_writes(adapter: MysqlAdapter, db: Any) -> None:
    op = _op("INSERT INTO person (pid) VALUES (:pid)", "pid")
    with pytest.raises(BackendError, match="1792") as err:
        await adapter.fetch(op, {"pid": "9999999999999"})
    assert "9999999999999" not in str(err.value)
    count = await _admin(db, "SELECT COUNT(*) FROM person WHERE pid = '9999999999999'")
    assert count[0][0] == 0
    # the refused statement left the connection usable and still read-only
    show = _op("SELECT @@tx_read_only AS ro, @@autocommit AS ac")
    assert await adapter.fetch(show, {}) == [{"ro": 1, "ac": 1}]


async def test_init_command_runs_with_read_only(db: Any) -> None:
    a = FACTORY.create("my", _options(db, init_command="SET SESSION time_zone = '+07:00'"), LIMITS)
    await a.open()
    try:
        show = _op("SELECT @@tx_read_only AS ro, @@session.time_zone AS tz")
        for _ in range(3):  # first use and reuse of the same connection
            assert await a.fetch(show, {}) == [{"ro": 1, "tz": "+07:00"}]
        assert a.pool_stats().size == 1
    finally:
        await a.close()


async def test_read_only_false_runs_init_command_only(db: Any) -> None:
    opts = _options(db, read_only=False, init_command="SET SESSION time_zone = '+07:00'")
    a = FACTORY.create("my", opts, LIMITS)
    await a.open()
    try:
        show = _op("SELECT @@tx_read_only AS ro, @@session.time_zone AS tz")
        assert await a.fetch(show, {}) == [{"ro": 0, "tz": "+07:00"}]
    finally:
        await a.close()


# --- errors ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["1234567890121", "O'Brien-1234567890121"])
async def test_syntax_error_is_a_backend_error_without_parameters(
    adapter: MysqlAdapter, value: str
) -> None:
    # the text protocol interpolates the value into the statement the server quotes
    op = _op("SELEC pid FROM person WHERE pid = :pid", "pid")
    with pytest.raises(BackendError, match="1064") as err:
        await adapter.fetch(op, {"pid": value})
    message = str(err.value)
    assert "1234567890121" not in message and "Brien" not in message
    assert "<statement omitted>" in message


async def test_cancelled_fetch_kills_the_query(adapter: MysqlAdapter, db: Any) -> None:
    slow = asyncio.create_task(adapter.fetch(_op("SELECT SLEEP(5) AS lc2_cancel_marker"), {}))
    await wait_until(lambda: adapter.pool_stats().in_use == 1)
    await asyncio.sleep(0.05)  # let the statement reach the server
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    await _wait_gone(db, "lc2_cancel_marker")
    assert adapter.pool_stats().in_use == 0


async def test_unknown_database_and_bad_password_are_unavailable(db: Any) -> None:
    for extra, code in (
        ({"database": "no_such_database_lc2"}, "1049"),
        ({"password": "wrong-password"}, "1045"),
    ):
        a = FACTORY.create("my", _options(db, **extra), LIMITS)
        await a.open()
        try:
            with pytest.raises(BackendUnavailable, match=code) as err:
                await a.probe()
            assert "wrong-password" not in str(err.value)
        finally:
            await a.close()


async def test_connection_killed_by_server_is_unavailable(adapter: MysqlAdapter, db: Any) -> None:
    slow = asyncio.create_task(adapter.fetch(_op("SELECT SLEEP(3) AS lc2_kill_marker"), {}))
    await wait_until(lambda: adapter.pool_stats().in_use == 1)
    for _ in range(100):  # until the statement shows in the process list
        ids = await _admin(
            db,
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
            ("%lc2_kill_marker%",),
        )
        if ids:
            break
        await asyncio.sleep(0.02)
    await _admin(db, f"KILL CONNECTION {int(ids[0][0])}")
    with pytest.raises(BackendUnavailable):
        await slow
    assert adapter.pool_stats() == PoolStats(size=0, in_use=0)
    assert await adapter.fetch(_op("SELECT 1 AS one"), {}) == [{"one": 1}]


async def test_result_columns_from_a_limit_0_form(adapter: MysqlAdapter) -> None:
    op = _op(
        "SELECT pid AS REG_NO, birth_char, '100%' AS pct FROM person WHERE pid = :pid "
        "ORDER BY pid LIMIT 5;",
        "pid",
    )
    assert isinstance(adapter, DescribesResult)
    assert await adapter.result_columns(op) == ["REG_NO", "birth_char", "pct"]
    with pytest.raises(BackendError, match="REG_NUM"):
        await adapter.result_columns(_op("SELECT REG_NUM FROM person WHERE pid = :pid", "pid"))
