"""ODBC adapter through real drivers against real databases: psqlodbc against the
PostgreSQL server, MariaDB Connector/ODBC against the MariaDB server, sqliteodbc on
SQLite files, and FreeTDS (tdsodbc) as far as it goes without a SQL Server (connect
failures).  Answers are compared with the native adapters on the same data."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import asyncpg
import pyodbc  # type: ignore[import-not-found, unused-ignore]
import pytest
from pydantic import ValidationError

from adapters import mysql as native_mysql
from adapters import postgresql as native_pg
from adapters import sqlite as native_sqlite
from adapters._sql import SqlOperation
from adapters.odbc import (
    FACTORY,
    OdbcAdapter,
    OdbcOptions,
    build_connection_string,
    describe_error,
    map_error,
)
from gateway.adapter import (
    Adapter,
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    DescribesResult,
    PoolStats,
)
from gateway.transforms import redecode_thai
from tests.conftest import MysqlServer, PgServer
from tests.support import PEOPLE

LIMITS = BackendLimits(pool_size=2, acquire_timeout=2.0, query_timeout=3.0)
PID_WHERE = "REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :pid"


def _op(query: str, *params: str, max_rows: int = 1000) -> Any:
    return FACTORY.prepare(None, SqlOperation(query=query, max_rows=max_rows), params)


async def _wait_until(cond: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# --- the three real targets ---------------------------------------------------------------


@dataclass
class Target:
    name: str
    options: dict[str, Any]  # OdbcOptions without the common parts
    slow: str  # a statement that runs for seconds; {marker} names it on the server
    running: Callable[[str], Awaitable[bool]]  # is a statement with this marker still running
    native: Any  # (factory, options) of the native adapter on the same data
    kill_all: Callable[[], Awaitable[None]]  # end every session of the gateway's user
    admin: Callable[..., Awaitable[list[Any]]]  # run SQL with the test's own driver
    cancellable: bool = True  # the adapter can stop a running statement on this DBMS

    def adapter(self, limits: BackendLimits = LIMITS, **extra: Any) -> OdbcAdapter:
        return FACTORY.create(
            self.name, OdbcOptions.model_validate({**self.options, **extra}), limits
        )


def _people_rows() -> list[tuple[str, bytes, str, str, str]]:
    return [
        (p["PID"], p["FULLNAME"].encode("cp874"), p["SEX"], p["BIRTH_DATE"], p["MOO"])
        for p in PEOPLE
    ]


@pytest.fixture(scope="module")
def pg_target(pg_server: PgServer) -> Iterator[Target]:
    async def admin(sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(pg_server.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def create() -> None:
        conn = await asyncpg.connect(pg_server.dsn)
        try:
            await conn.execute(
                "DROP TABLE IF EXISTS odbc_person; CREATE TABLE odbc_person (pid CHAR(17), "
                "fullname VARCHAR(100), sex CHAR(1), birth_date CHAR(8), moo VARCHAR(2), "
                "born DATE, fee NUMERIC(10, 2))"
            )
            await conn.executemany(
                "INSERT INTO odbc_person VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"], None, None)
                    for p in PEOPLE
                ],
            )
            await conn.execute("CREATE TABLE IF NOT EXISTS odbc_many (n INT)")
            await conn.execute("INSERT INTO odbc_many SELECT generate_series(1, 50)")
        finally:
            await conn.close()

    asyncio.run(create())
    dsn = urlsplit(pg_server.dsn)
    cs = (
        f"Driver={{PostgreSQL Unicode}};Server={dsn.hostname};Port={dsn.port or 5432};"
        f"Database={dsn.path.lstrip('/')}"
    )

    async def running(marker: str) -> bool:
        rows = await admin(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
            "AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        return bool(rows)

    async def kill_all() -> None:
        await admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    yield Target(
        "odbc-postgresql",
        {"connection_string": cs, "user": dsn.username or "postgres"},
        "SELECT pg_sleep(10) AS {marker}",
        running,
        (native_pg.FACTORY, native_pg.PostgresOptions(dsn=pg_server.dsn)),
        kill_all,
        admin,
    )
    asyncio.run(admin("DROP TABLE IF EXISTS odbc_person, odbc_many"))


@pytest.fixture(scope="module")
def mariadb_target(mysql_server: MysqlServer) -> Iterator[Target]:
    srv = mysql_server

    async def admin(sql: str, args: Any = None) -> list[Any]:
        conn = await asyncmy.connect(
            host=srv.host, port=srv.port, user=srv.user, password=srv.password,
            database=srv.database, autocommit=True,
        )  # fmt: skip
        try:
            cur = conn.cursor()
            await cur.execute(sql, args)
            rows: list[Any] = list(await cur.fetchall())
            return rows
        finally:
            conn.close()

    async def create() -> None:
        await admin("DROP TABLE IF EXISTS odbc_person")
        await admin(
            "CREATE TABLE odbc_person (PID CHAR(17), FULLNAME VARCHAR(100) CHARACTER SET latin1, "
            "SEX CHAR(1), BIRTH_DATE CHAR(8), MOO VARCHAR(2), NOTE VARCHAR(60) CHARACTER SET "
            "latin1) CHARACTER SET utf8mb4"
        )
        for row in _people_rows():  # raw TIS-620 bytes in latin1 columns
            await admin("INSERT INTO odbc_person VALUES (%s, %s, %s, %s, %s, NULL)", row)

    asyncio.run(create())
    cs = f"Driver={{MariaDB Unicode}};Server={srv.host};Port={srv.port};Database={srv.database}"

    async def running(marker: str) -> bool:
        rows = await admin(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
            "AND ID <> CONNECTION_ID()",
            (f"%{marker}%",),
        )
        return bool(rows)

    async def kill_all() -> None:
        ids = await admin(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
            (srv.database,),
        )
        for (ident,) in ids:
            with contextlib.suppress(Exception):  # already gone
                await admin(f"KILL {int(ident)}")

    native_opts = native_mysql.MysqlOptions(
        host=srv.host, port=srv.port, user=srv.user, database=srv.database
    )
    options: dict[str, Any] = {"connection_string": cs, "user": srv.user}
    if srv.password:
        options["password"] = srv.password
    yield Target(
        "odbc-mariadb",
        options,
        "SELECT SLEEP(10) AS {marker}",
        running,
        (native_mysql.FACTORY, native_opts),
        kill_all,
        admin,
    )
    asyncio.run(admin("DROP TABLE IF EXISTS odbc_person"))


@pytest.fixture(scope="module")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    path = tmp_path_factory.mktemp("odbc") / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE odbc_person (PID CHAR(17), FULLNAME VARCHAR(100), SEX CHAR(1), "
            "BIRTH_DATE CHAR(8), MOO VARCHAR(2), NOTE VARCHAR(60))"
        )
        for row in _people_rows():  # TIS-620 bytes in TEXT, as an old import leaves them
            db.execute("INSERT INTO odbc_person VALUES (?, CAST(? AS TEXT), ?, ?, ?, NULL)", row)
    db.close()

    async def running(marker: str) -> bool:
        return False  # in-process: nothing to see from outside

    async def kill_all() -> None:
        return None

    async def admin(sql: str, *args: Any) -> list[Any]:
        with sqlite3.connect(path) as db:
            rows = list(db.execute(sql, args))
        db.close()
        return rows

    return Target(
        "odbc-sqlite",
        {
            "connection_string": f"Driver={{SQLite3}};Database={path};NoCreat=1",
            "decoding": {"char": "cp874"},
        },
        # about two seconds: nothing stops it early, the test waits for its end
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000) "
        "SELECT max(x) AS {marker} FROM c",
        running,
        (native_sqlite.FACTORY, native_sqlite.SqliteOptions(path=path)),
        kill_all,
        admin,
        cancellable=False,
    )


@pytest.fixture(params=["pg", "mariadb", "sqlite"])
def target(request: pytest.FixtureRequest) -> Target:
    name = {"pg": "pg_target", "mariadb": "mariadb_target", "sqlite": "sqlite_target"}
    t: Target = request.getfixturevalue(name[request.param])
    return t


@pytest.fixture
async def adapter(target: Target) -> AsyncIterator[OdbcAdapter]:
    a = target.adapter()
    await a.open()
    try:
        yield a
    finally:
        await a.close()


def _marker() -> str:
    return f"lc2_odbc_{uuid.uuid4().hex[:8]}"


# --- options, connection strings, prepare: no server needed ------------------------------


def test_options() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        OdbcOptions.model_validate({})
    with pytest.raises(ValidationError, match="exactly one"):
        OdbcOptions.model_validate({"dsn": "x", "connection_string": "Driver={FreeTDS}"})
    with pytest.raises(ValidationError, match="must not contain a password"):
        OdbcOptions.model_validate({"connection_string": "Driver={FreeTDS};Server=h;PWD=x"})
    with pytest.raises(ValidationError, match="must not contain a password"):
        OdbcOptions.model_validate({"connection_string": "DRIVER={x};password = {a;b}"})
    with pytest.raises(ValidationError, match="UID is both"):
        OdbcOptions.model_validate({"connection_string": "DSN=x;UID=a", "user": "b"})
    with pytest.raises(ValidationError, match="unknown codec"):
        OdbcOptions.model_validate({"dsn": "x", "decoding": {"char": "tis-999"}})
    with pytest.raises(ValidationError):
        OdbcOptions.model_validate({"dsn": "x", "port": 1})
    opts = OdbcOptions.model_validate({"dsn": "fisher", "decoding": {"char": "TIS-620"}})
    assert opts.decoding.char == "tis-620" and opts.decoding.wchar is None
    assert opts.read_only and opts.encoding == "utf-16le"


def test_connection_string_building() -> None:
    opts = OdbcOptions.model_validate(
        {
            "connection_string": "Driver={FreeTDS};Server=10.0.0.5;Port=1433;Database=FISH;",
            "user": "gw reader",
            "password": "p;w}d{x=1",
        }
    )
    cs = build_connection_string(opts)
    assert cs == (
        "Driver={FreeTDS};Server=10.0.0.5;Port=1433;Database=FISH;UID=gw reader;PWD={p;w}}d{x=1}"
    )
    # psqlodbc keeps the braces of a braced UID: plain names are not braced
    dsn = OdbcOptions.model_validate({"dsn": "fisher", "user": "postgres"})
    assert build_connection_string(dsn) == "DSN=fisher;UID=postgres"
    assert "p;w}d{x=1" not in repr(opts)


def test_factory_prepares_qmark_placeholders() -> None:
    assert FACTORY.type_name == "odbc"
    op = _op("SELECT * FROM t WHERE a = :pid OR b = :pid AND c = ':x' AND d = :o", "pid", "o")
    assert op.sql == "SELECT * FROM t WHERE a = ? OR b = ? AND c = ':x' AND d = ?"
    assert op.bind({"pid": "1", "o": "2"}) == ("1", "1", "2")


def _pyodbc_error(cls: type[Exception], sqlstate: str, message: str) -> Exception:
    """As pyodbc raises them: args are (SQLSTATE, "[SQLSTATE] driver text (native) (function)")."""
    return cls(sqlstate, f"[{sqlstate}] {message}")


@pytest.mark.parametrize(
    ("exc", "dialect", "expected"),
    [
        # FreeTDS talking to SQL Server (the message format FreeTDS uses)
        (_pyodbc_error(pyodbc.OperationalError, "08S01",
            "[FreeTDS][SQL Server]Communication link failure (0) (SQLExecDirectW)"),
         "mssql", BackendUnavailable),
        (_pyodbc_error(pyodbc.InterfaceError, "28000",
            "[FreeTDS][SQL Server]Login failed for user 'gw'. (18456) (SQLDriverConnect)"),
         "mssql", BackendUnavailable),
        (_pyodbc_error(pyodbc.ProgrammingError, "42000",
            "[FreeTDS][SQL Server]Cannot open database \"FISH\" requested by the login. (4060) "
            "(SQLDriverConnect)"), "mssql", BackendUnavailable),
        (_pyodbc_error(pyodbc.OperationalError, "HYT00",
            "[FreeTDS][SQL Server]Query timeout expired (0) (SQLExecDirectW)"),
         "mssql", BackendTimeout),
        (_pyodbc_error(pyodbc.Error, "HY000",
            "[FreeTDS][SQL Server]Lock request time out period exceeded. (1222) "
            "(SQLExecDirectW)"), "mssql", BackendTimeout),
        (_pyodbc_error(pyodbc.ProgrammingError, "42S02",
            "[FreeTDS][SQL Server]Invalid object name 'FISHER'. (208) (SQLExecDirectW)"),
         "mssql", BackendError),
        (_pyodbc_error(pyodbc.Error, "40001",
            "[FreeTDS][SQL Server]Transaction (Process ID 59) was deadlocked (1205) "
            "(SQLExecDirectW)"), "mssql", BackendError),
        # MariaDB Connector/ODBC reports server-gone as HY000 with the native number
        (_pyodbc_error(pyodbc.Error, "HY000",
            "[ma-3.1.15]Server has gone away (2006) (SQLExecDirectW)"),
         "mariadb", BackendUnavailable),
        (_pyodbc_error(pyodbc.Error, "HY000",
            "[ma-3.1.15]Lock wait timeout exceeded (1205) (SQLExecDirectW)"),
         "mariadb", BackendTimeout),
        (_pyodbc_error(pyodbc.InterfaceError, "IM002",
            "[unixODBC][Driver Manager]Data source name not found (0) (SQLDriverConnect)"),
         "other", BackendUnavailable),
    ],
)  # fmt: skip
def test_error_mapping(exc: Exception, dialect: str, expected: type[Exception]) -> None:
    mapped = map_error(exc, (), dialect)
    assert type(mapped) is expected, describe_error(exc)


def test_error_text_never_carries_a_parameter() -> None:
    pid = "1740100234561"
    exc = _pyodbc_error(
        pyodbc.DataError,
        "22018",
        f"[FreeTDS][SQL Server]Conversion failed when converting the varchar value "
        f"'{pid} x' to data type int. (245) (SQLExecDirectW)",
    )
    text = str(map_error(exc, (pid,), "mssql"))
    assert pid not in text and "245" in text and "22018" in text
    syntax = _pyodbc_error(
        pyodbc.ProgrammingError,
        "42000",
        f"[ma-3.1.15]You have an error in your SQL syntax near '{pid}' LIMIT 1' at line 1 "
        "(1064) (SQLExecDirectW)",
    )
    assert pid not in str(map_error(syntax, (pid,), "mariadb"))


# --- fetching through the real drivers -----------------------------------------------------


async def test_is_an_adapter(adapter: OdbcAdapter) -> None:
    assert isinstance(adapter, Adapter)


def _comparable(rows: Any) -> list[dict[str, Any]]:
    """Rows with lower-case keys and legacy text as the cp874 transform would give it."""
    out = []
    for r in rows:
        out.append(
            {
                str(k).lower(): (redecode_thai(v) if isinstance(v, str | bytes) else v)
                for k, v in r.items()
            }
        )
    return out


async def test_same_rows_as_the_native_adapter(target: Target, adapter: OdbcAdapter) -> None:
    query = f"SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM odbc_person WHERE {PID_WHERE}"
    factory, native_options = target.native
    native = factory.create("native", native_options, LIMITS)
    await native.open()
    try:
        native_op = factory.prepare(native_options, SqlOperation(query=query), ["pid"])
        for p in PEOPLE:
            odbc_rows = await adapter.fetch(_op(query, "pid"), {"pid": p["pid"]})
            native_rows = await native.fetch(native_op, {"pid": p["pid"]})
            assert len(odbc_rows) == 1, (target.name, p["pid"])
            left, right = _comparable(odbc_rows), _comparable(native_rows)
            # MariaDB Connector/ODBC trims CHAR padding, the text protocol does not
            for row in (*left, *right):
                row["pid"] = row["pid"].rstrip()
            assert left == right, target.name
            assert left[0]["fullname"] == p["FULLNAME"]
    finally:
        await native.close()


async def test_result_columns_are_described_without_reading(
    target: Target, adapter: OdbcAdapter
) -> None:
    op = _op(f"SELECT PID AS REG_NO, FULLNAME FROM odbc_person WHERE {PID_WHERE};", "pid")
    assert isinstance(adapter, DescribesResult)
    columns = await adapter.result_columns(op)
    assert [c.lower() for c in columns or ()] == ["reg_no", "fullname"], target.name
    with pytest.raises(BackendError):
        await adapter.result_columns(
            _op(f"SELECT REG_NUM FROM odbc_person WHERE {PID_WHERE}", "pid")
        )


async def test_no_match_and_max_rows(target: Target, adapter: OdbcAdapter) -> None:
    op = _op(f"SELECT PID FROM odbc_person WHERE {PID_WHERE}", "pid")
    assert await adapter.fetch(op, {"pid": "0000000000000"}) == []
    capped = _op("SELECT PID FROM odbc_person ORDER BY PID", max_rows=2)
    assert len(await adapter.fetch(capped, {})) == 2


async def test_probe_and_pool_stats(adapter: OdbcAdapter) -> None:
    assert adapter.pool_stats() == PoolStats(size=0, in_use=0)  # lazy: nothing yet
    await adapter.probe()
    assert adapter.pool_stats() == PoolStats(size=1, in_use=0)
    await adapter.probe()  # reused, not a second connection
    assert adapter.pool_stats() == PoolStats(size=1, in_use=0)


async def test_read_only_refuses_writes(target: Target, adapter: OdbcAdapter) -> None:
    op = _op("INSERT INTO odbc_person (PID) VALUES (:pid)", "pid")
    with pytest.raises(BackendError) as err:
        await adapter.fetch(op, {"pid": "9999999999999"})
    assert "9999999999999" not in str(err.value)
    count = _op("SELECT COUNT(*) AS n FROM odbc_person WHERE PID = :pid", "pid")
    rows = await adapter.fetch(count, {"pid": "9999999999999"})
    assert list(rows[0].values()) == [0]


async def test_read_only_false_allows_writes(pg_target: Target) -> None:
    a = pg_target.adapter(read_only=False)
    await a.open()
    try:
        rows = await a.fetch(_op("SELECT current_setting('transaction_read_only') AS ro"), {})
        assert rows == [{"ro": "off"}]
    finally:
        await a.close()


async def test_query_timeout_cancels_on_the_server(target: Target) -> None:
    a = target.adapter(BackendLimits(pool_size=1, acquire_timeout=2.0, query_timeout=0.5))
    await a.open()
    try:
        marker = _marker()
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            await a.fetch(_op(target.slow.format(marker=marker)), {})
        assert time.monotonic() - started < 1.5
        if not target.cancellable:
            # the statement runs to its end and keeps its slot meanwhile
            assert a.pool_stats().in_use == 1
            await _wait_until(lambda: a.pool_stats().in_use == 0, within=60.0)
        # the statement was cancelled on the server, its connection discarded, the slot back
        await _wait_until(lambda: a.pool_stats() == PoolStats(size=0, in_use=0))
        for _ in range(100):
            if not await target.running(marker):
                break
            await asyncio.sleep(0.05)
        assert not await target.running(marker)
        assert len(await a.fetch(_op("SELECT PID FROM odbc_person"), {})) == len(PEOPLE)
    finally:
        await a.close()


async def test_cancelled_fetch_cancels_the_statement(target: Target) -> None:
    # MariaDB's driver can take seconds to give a cancelled SLEEP back on a loaded machine
    a = target.adapter(BackendLimits(pool_size=1, acquire_timeout=10.0, query_timeout=30.0))
    await a.open()
    try:
        marker = _marker()
        slow = asyncio.create_task(a.fetch(_op(target.slow.format(marker=marker)), {}))
        await _wait_until(lambda: a.pool_stats().in_use == 1)
        await asyncio.sleep(0.3)  # connected and running
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        started = time.monotonic()  # the only slot is free again once the driver returns
        if not target.cancellable:  # only once the statement has run to its end
            await _wait_until(lambda: a.pool_stats().in_use == 0, within=60.0)
        assert len(await a.fetch(_op("SELECT PID FROM odbc_person"), {})) == len(PEOPLE)
        assert time.monotonic() - started < 8.0  # far below the statement's own length
        assert not await target.running(marker)
    finally:
        await a.close()


async def test_cancels_racing_the_end_of_the_statement(target: Target) -> None:
    """Timeouts and cancellations landing just as statements finish: a cancel must never
    touch a statement the worker is fetching or freeing (with SQLCancel, MariaDB's driver
    crashed the process here one run in three)."""
    fast = {
        "odbc-postgresql": "SELECT pg_sleep(0.05) AS s",
        "odbc-mariadb": "SELECT SLEEP(0.05) AS s",
        "odbc-sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 150000) SELECT max(x) AS s FROM c",
    }[target.name]
    a = target.adapter(BackendLimits(pool_size=4, acquire_timeout=2.0, query_timeout=0.05))
    await a.open()
    rng = random.Random(3)
    try:
        for _ in range(100):
            calls = [asyncio.create_task(a.fetch(_op(fast), {})) for _ in range(4)]
            await asyncio.sleep(rng.random() * 0.06)
            calls[0].cancel()
            for outcome in await asyncio.gather(*calls, return_exceptions=True):
                assert isinstance(
                    outcome, list | BackendTimeout | BackendBusy | asyncio.CancelledError
                ), outcome
        await _wait_until(lambda: a.pool_stats().in_use == 0)
        assert len(await a.fetch(_op("SELECT PID FROM odbc_person"), {})) == len(PEOPLE)
    finally:
        await a.close()


async def test_exhausted_pool_is_busy(pg_target: Target) -> None:
    a = pg_target.adapter(BackendLimits(pool_size=1, acquire_timeout=0.3, query_timeout=3.0))
    await a.open()
    try:
        slow = asyncio.create_task(a.fetch(_op("SELECT pg_sleep(1) AS s"), {}))
        await _wait_until(lambda: a.pool_stats().in_use == 1)
        started = time.monotonic()
        with pytest.raises(BackendBusy):
            await a.fetch(_op("SELECT 1 AS one"), {})
        assert 0.25 < time.monotonic() - started < 0.9
        assert await slow == [{"s": ""}]  # psqlodbc gives void as an empty string
    finally:
        await a.close()


async def test_syntax_and_data_errors_never_quote_the_parameter(
    pg_target: Target, mariadb_target: Target
) -> None:
    secret = "1740100234561"
    for t, sql in (
        (pg_target, "SELECT CAST(:pid AS integer) AS n"),
        (pg_target, "SELEC pid FROM odbc_person WHERE pid = :pid"),
        (mariadb_target, "SELEC PID FROM odbc_person WHERE PID = :pid"),
    ):
        a = t.adapter()
        await a.open()
        try:
            with pytest.raises(BackendError) as err:
                await a.fetch(_op(sql, "pid"), {"pid": f"{secret}x"})
            assert secret not in str(err.value), str(err.value)
            assert str(err.value).startswith("odbc ")
        finally:
            await a.close()


async def test_connection_killed_by_the_server(target: Target) -> None:
    if target.name == "odbc-sqlite":
        return  # an in-process file has no server to lose
    a = target.adapter()
    await a.open()
    try:
        await a.probe()
        await target.kill_all()
        with pytest.raises(BackendUnavailable):  # the gateway's guard retries this once
            await a.fetch(_op("SELECT PID FROM odbc_person"), {})
        assert len(await a.fetch(_op("SELECT PID FROM odbc_person"), {})) == len(PEOPLE)
    finally:
        await a.close()


async def test_stale_idle_connections_are_replaced(pg_target: Target) -> None:
    a = pg_target.adapter(max_idle_time=0.1)
    await a.open()
    try:
        pid = _op("SELECT pg_backend_pid() AS p")
        first = (await a.fetch(pid, {}))[0]["p"]
        assert (await a.fetch(pid, {}))[0]["p"] == first  # warm: reused
        await asyncio.sleep(0.2)
        assert (await a.fetch(pid, {}))[0]["p"] != first
        assert a.pool_stats().size == 1
    finally:
        await a.close()


async def test_init_statements_and_server_timeout(pg_target: Target) -> None:
    a = pg_target.adapter(init_statements=["SET application_name = 'lc2-odbc-test'"])
    await a.open()
    try:
        rows = await a.fetch(
            _op(
                "SELECT current_setting('application_name') AS app, "
                "current_setting('transaction_read_only') AS ro, "
                "current_setting('statement_timeout') AS st"
            ),
            {},
        )
        assert rows == [{"app": "lc2-odbc-test", "ro": "on", "st": "4s"}]
    finally:
        await a.close()


async def test_mariadb_session_is_read_only_with_a_statement_timeout(
    mariadb_target: Target,
) -> None:
    a = mariadb_target.adapter()
    await a.open()
    try:
        rows = await a.fetch(_op("SELECT @@tx_read_only AS ro, @@max_statement_time AS mst"), {})
        assert rows == [{"ro": 1, "mst": 4.0}]
    finally:
        await a.close()


# --- Thai text --------------------------------------------------------------------------


async def test_mariadb_latin1_values_arrive_whole(mariadb_target: Target) -> None:
    """MariaDB Connector/ODBC 3.1 shortens latin1 values with high bytes when they are
    fetched as UTF-16; the adapter fetches MariaDB text as UTF-8, and every value of a
    random set of TIS-620 strings comes back whole."""
    rng = random.Random(7)
    thai = [*range(0xA1, 0xDB), *range(0xDF, 0xFC), 0x20, 0x2E]  # TIS-620's defined bytes
    values = [bytes(rng.choice(thai) for _ in range(rng.randrange(1, 40))) for _ in range(120)]
    tag = f"R{uuid.uuid4().hex[:6]}"
    admin = mariadb_target.admin
    for i, v in enumerate(values):
        await admin(
            "INSERT INTO odbc_person (PID, FULLNAME, NOTE) VALUES (%s, %s, %s)",
            (f"{tag}{i:03d}", v, tag),
        )
    a = mariadb_target.adapter()
    await a.open()
    try:
        rows = await a.fetch(
            _op("SELECT PID, FULLNAME FROM odbc_person WHERE NOTE = :t ORDER BY PID", "t"),
            {"t": tag},
        )
        got = [redecode_thai(r["FULLNAME"]) for r in rows]
        assert got == [v.decode("cp874") for v in values]
        # the same data read as raw bytes: CHARSET=latin1 and cp874 decoding
        raw = mariadb_target.adapter(
            connection_string=mariadb_target.options["connection_string"] + ";CHARSET=latin1",
            decoding={"char": "cp874", "wchar": "cp874"},
        )
        await raw.open()
        try:
            rows = await raw.fetch(
                _op("SELECT FULLNAME FROM odbc_person WHERE NOTE = :t ORDER BY PID", "t"),
                {"t": tag},
            )
            assert [r["FULLNAME"] for r in rows] == [v.decode("cp874") for v in values]
        finally:
            await raw.close()
    finally:
        await a.close()
        await admin("DELETE FROM odbc_person WHERE NOTE = %s", (tag,))


async def test_undecodable_bytes(sqlite_target: Target, tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (v VARCHAR(20))")
        db.execute("INSERT INTO t VALUES (CAST(? AS TEXT))", ("สม".encode("cp874") + b"\xfc",))
    db.close()
    cs = f"Driver={{SQLite3}};Database={path};NoCreat=1"
    lenient = FACTORY.create(
        "l",
        OdbcOptions.model_validate({"connection_string": cs, "decoding": {"char": "cp874"}}),
        LIMITS,
    )
    strict = FACTORY.create(
        "s",
        OdbcOptions.model_validate(
            {"connection_string": cs, "decoding": {"char": "cp874"}, "decoding_errors": "strict"}
        ),
        LIMITS,
    )
    for a in (lenient, strict):
        await a.open()
    try:
        assert await lenient.fetch(_op("SELECT v FROM t"), {}) == [{"v": "สม\ufffd"}]
        with pytest.raises(BackendError, match="does not decode as configured"):
            await strict.fetch(_op("SELECT v FROM t"), {})
        assert await strict.fetch(_op("SELECT 1 AS one"), {}) == [{"one": 1}]  # still usable
    finally:
        for a in (lenient, strict):
            await a.close()


async def test_single_byte_parameters_match_legacy_bytes(sqlite_target: Target) -> None:
    """encoding: cp874 binds str parameters as VARCHAR bytes, equal to the TIS-620 stored."""
    a = sqlite_target.adapter(encoding="cp874")
    await a.open()
    try:
        op = _op("SELECT PID FROM odbc_person WHERE FULLNAME = :name", "name")
        assert await a.fetch(op, {"name": PEOPLE[2]["FULLNAME"]}) == [{"PID": PEOPLE[2]["PID"]}]
    finally:
        await a.close()


# --- unreachable, misconfigured, closed ----------------------------------------------------


@pytest.mark.parametrize(
    "connection_string",
    [
        "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=none;UID=postgres",
        "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Database=none;UID=root",
        "Driver={FreeTDS};Server=127.0.0.1;Port=1;Database=none;TDS_Version=7.4",
        "Driver={SQLite3};Database=/nonexistent/dir/legacy.sqlite;NoCreat=1",
        "Driver={No Such Driver};Server=127.0.0.1",
        "DSN=lc2_no_such_dsn",
    ],
)
async def test_unreachable_or_misconfigured_is_unavailable(connection_string: str) -> None:
    key = "dsn" if connection_string.startswith("DSN=") else "connection_string"
    value = connection_string[4:] if key == "dsn" else connection_string
    opts = OdbcOptions.model_validate({key: value, "password": "s3cret-pw", "login_timeout": 2})
    a = FACTORY.create(
        "down", opts, BackendLimits(pool_size=2, acquire_timeout=3.0, query_timeout=2.0)
    )
    await a.open()  # lazy: connects nothing
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="cannot connect") as err:
            await a.fetch(_op("SELECT 1"), {})
        assert time.monotonic() - started < 3.0
        assert "s3cret-pw" not in str(err.value)
        with pytest.raises(BackendUnavailable):
            await a.probe()
        assert a.pool_stats() == PoolStats(size=0, in_use=0)
    finally:
        await a.close()


async def test_bad_password_is_unavailable_and_not_shown(mariadb_target: Target) -> None:
    a = mariadb_target.adapter(user="lc2_nobody", password="wrong-Passw0rd")
    await a.open()
    try:
        with pytest.raises(BackendUnavailable, match="Access denied") as err:
            await a.fetch(_op("SELECT 1"), {})
        assert "wrong-Passw0rd" not in str(err.value)
    finally:
        await a.close()


async def test_close_is_clean_and_final(pg_target: Target) -> None:
    a = pg_target.adapter()
    await a.open()
    await a.probe()
    await a.close()
    assert a.pool_stats() == PoolStats(size=0, in_use=0)
    with pytest.raises(BackendUnavailable, match="closed"):
        await a.fetch(_op("SELECT 1"), {})
    await a.close()


async def test_close_with_a_query_in_flight(pg_target: Target) -> None:
    a = pg_target.adapter(BackendLimits(pool_size=1, acquire_timeout=1.0, query_timeout=0.5))
    await a.open()
    slow = asyncio.create_task(a.fetch(_op("SELECT pg_sleep(5) AS s"), {}))
    await _wait_until(lambda: a.pool_stats().in_use == 1)
    started = time.monotonic()
    await a.close()
    assert time.monotonic() - started < 2.0
    with pytest.raises(BackendTimeout):
        await slow
