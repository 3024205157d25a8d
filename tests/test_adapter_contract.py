"""The adapter contract (gateway/testing/adapter_contract.py) run against every built-in
adapter with its real server: what each per-adapter test module used to check on its own."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import asyncpg
import pytest

from adapters import files, http, mysql, odbc, postgresql, soap, sqlite
from gateway.adapter import BackendBusy, BackendFault, BackendLimits, BackendUnavailable
from gateway.testing.adapter_contract import (
    AdapterContract,
    Call,
    ContractBackend,
    ReadOnlyContract,
    WriteCheck,
)
from tests.conftest import MysqlServer, PgServer
from tests.files_support import write_csv
from tests.http_upstream import NOT_REGISTERED, Upstream, running_http_upstream
from tests.soap_server import FAULT_BAD_REQUEST, SLOW_OWNER, SoapServer, running_soap_server
from tests.support import PEOPLE

SECRET = "1234567890121"  # bound where the backend would quote it back


def _marker() -> str:
    return f"contract_{uuid.uuid4().hex[:8]}"


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_table(pg_server: PgServer) -> Iterator[str]:
    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_server.dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin("CREATE TABLE contract_written (v TEXT)"))
    yield pg_server.dsn
    asyncio.run(admin("DROP TABLE IF EXISTS contract_written"))


async def _pg_count(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


def _pg_running(dsn: str, marker: str) -> Callable[[], Awaitable[int]]:
    async def running() -> int:
        return await _pg_count(
            dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
            "AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )

    return running


def _pg_writes(dsn: str) -> WriteCheck:
    return WriteCheck(
        Call({"query": "INSERT INTO contract_written VALUES (:v)"}, {"v": SECRET}),
        lambda: _pg_count(dsn, "SELECT count(*) FROM contract_written"),
    )


class TestPostgresqlContract(AdapterContract, ReadOnlyContract):
    @pytest.fixture
    def contract_backend(self, pg_table: str) -> ContractBackend:
        app = _marker()

        return ContractBackend(
            factory=postgresql.FACTORY,
            options={"dsn": pg_table, "server_settings": {"application_name": app}},
            unreachable={"dsn": "postgresql://postgres@127.0.0.1:1/nothing"},
            rows=Call({"query": "SELECT n FROM generate_series(1, 5) AS n"}),
            slow=Call({"query": f"SELECT pg_sleep(5) AS {app}"}),
            # the server quotes the value it can not cast
            refused=Call({"query": "SELECT CAST(CAST(:v AS text) AS int) AS d"}, {"v": SECRET}),
            still_running=_pg_running(pg_table, app),
        )

    @pytest.fixture
    def contract_writes(self, pg_table: str) -> WriteCheck:
        return _pg_writes(pg_table)


class TestOdbcContract(AdapterContract, ReadOnlyContract):
    """Through the PostgreSQL ODBC driver of unixODBC."""

    @pytest.fixture
    def contract_backend(self, pg_table: str) -> ContractBackend:
        marker = _marker()
        dsn = urlsplit(pg_table)
        cs = (
            f"Driver={{PostgreSQL Unicode}};Server={dsn.hostname};Port={dsn.port or 5432};"
            f"Database={dsn.path.lstrip('/')}"
        )
        user = dsn.username or "postgres"
        return ContractBackend(
            factory=odbc.FACTORY,
            options={"connection_string": cs, "user": user},
            unreachable={
                "connection_string": "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1",
                "user": user,
            },
            rows=Call({"query": "SELECT n FROM generate_series(1, 5) AS n"}),
            slow=Call({"query": f"SELECT pg_sleep(5) AS {marker}"}),
            refused=Call({"query": "SELECT CAST(CAST(:v AS text) AS int) AS d"}, {"v": SECRET}),
            still_running=_pg_running(pg_table, marker),
        )

    @pytest.fixture
    def contract_writes(self, pg_table: str) -> WriteCheck:
        return _pg_writes(pg_table)


# --- MariaDB / MySQL ------------------------------------------------------------------------


async def _my_admin(server: MysqlServer, sql: str, args: Any = None) -> list[Any]:
    conn = await asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        db=server.database,
        autocommit=True,
        connect_timeout=5,
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def my_table(mysql_server: MysqlServer) -> Iterator[MysqlServer]:
    asyncio.run(_my_admin(mysql_server, "CREATE TABLE contract_written (v VARCHAR(20))"))
    yield mysql_server
    asyncio.run(_my_admin(mysql_server, "DROP TABLE IF EXISTS contract_written"))


class TestMysqlContract(AdapterContract, ReadOnlyContract):
    @pytest.fixture
    def contract_backend(self, my_table: MysqlServer) -> ContractBackend:
        marker = _marker()

        async def still_running() -> int:
            rows = await _my_admin(
                my_table,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                (f"%{marker} %",),
            )
            return int(rows[0][0])

        server = my_table
        return ContractBackend(
            factory=mysql.FACTORY,
            options={
                "host": server.host,
                "port": server.port,
                "user": server.user,
                "password": server.password or None,
                "database": server.database,
            },
            unreachable={"host": "127.0.0.1", "port": 1, "user": "nobody", "database": "x"},
            rows=Call(
                {"query": "SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"}
            ),
            slow=Call({"query": f"SELECT SLEEP(5) AS {marker} "}),
            # the text protocol interpolates the value into the statement the server quotes
            refused=Call({"query": "SELEC pid FROM person WHERE pid = :v"}, {"v": SECRET}),
            still_running=still_running,
        )

    @pytest.fixture
    def contract_writes(self, my_table: MysqlServer) -> WriteCheck:
        async def written() -> int:
            rows = await _my_admin(my_table, "SELECT COUNT(*) FROM contract_written")
            return int(rows[0][0])

        return WriteCheck(
            Call({"query": "INSERT INTO contract_written VALUES (:v)"}, {"v": SECRET}), written
        )


# --- SQLite ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE written (v TEXT)")
    db.close()
    return path


def _sqlite_written(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count = int(db.execute("SELECT count(*) FROM written").fetchone()[0])
    db.close()
    return count


class TestSqliteContract(AdapterContract, ReadOnlyContract):
    @pytest.fixture
    def contract_backend(self, sqlite_file: Path) -> ContractBackend:
        return ContractBackend(
            factory=sqlite.FACTORY,
            options={"path": str(sqlite_file)},
            unreachable={"path": str(sqlite_file.with_name("missing.sqlite"))},
            rows=Call(
                {
                    "query": "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
                    "WHERE n < 5) SELECT n FROM c"
                }
            ),
            # endless until interrupted
            slow=Call(
                {
                    "query": "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) "
                    "SELECT count(*) FROM c"
                }
            ),
            refused=Call({"query": "SELECT json(:v) AS j"}, {"v": "{" + SECRET}),
        )

    @pytest.fixture
    def contract_writes(self, sqlite_file: Path) -> WriteCheck:
        async def written() -> int:
            return await asyncio.to_thread(_sqlite_written, sqlite_file)

        return WriteCheck(
            Call({"query": "INSERT INTO written VALUES (:v)"}, {"v": SECRET}), written
        )


# --- HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_http_upstream() as up:
        yield up


class TestHttpContract(AdapterContract):
    @pytest.fixture
    def contract_backend(self, upstream: Upstream) -> ContractBackend:
        return ContractBackend(
            factory=http.FACTORY,
            options={"base_url": upstream.url},
            unreachable={"base_url": "http://127.0.0.1:1/"},
            rows=Call({"path": "/rows/5", "rows": "data"}),
            slow=Call({"path": "/sleep/5", "rows": "data"}),
            # the upstream's own error document quotes the identifier it was asked about
            refused=Call(
                {
                    "path": "/fisher",
                    "query": {"pid": "{v}"},
                    "rows": "data",
                    "error_document": {"code": "resultCode", "message": "resultMsg", "ok": ["0"]},
                },
                {"v": NOT_REGISTERED},
            ),
            refused_error=BackendFault,
        )


# --- SOAP -----------------------------------------------------------------------------------

WSDL = Path(__file__).resolve().parent.parent / "config" / "vessels" / "vessel-licence.wsdl"
SOAP_USERS = {"gw": "s3cret-pass"}


@pytest.fixture(scope="module")
def soap_server() -> Iterator[SoapServer]:
    with running_soap_server(users=SOAP_USERS) as srv:
        yield srv


def _licences(owner: str) -> Call:
    return Call(
        {
            "name": "GetVesselLicences",
            "request": {"ownerId": "{personalId}"},
            "rows": "GetVesselLicencesResponse/GetVesselLicencesResult/Licence",
        },
        {"personalId": owner},
    )


class TestSoapContract(AdapterContract):
    @pytest.fixture
    def contract_backend(self, soap_server: SoapServer) -> ContractBackend:
        options = {"wsdl": str(WSDL), "wsse": {"username": "gw", "password": SOAP_USERS["gw"]}}
        return ContractBackend(
            factory=soap.FACTORY,
            options={**options, "endpoint": soap_server.url},
            unreachable={**options, "endpoint": "http://127.0.0.1:1/"},
            rows=_licences(PEOPLE[0]["pid"]),
            slow=_licences(SLOW_OWNER),
            # the service's fault string quotes the owner ID it refuses
            refused=_licences(FAULT_BAD_REQUEST),
            refused_error=BackendFault,
        )


# --- files (csv; dbf and fixedwidth share the same store) ----------------------------------


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [[p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]] for p in PEOPLE]
    return write_csv(tmp_path_factory.mktemp("contract") / "fisher.csv", rows)


class TestFilesContract(AdapterContract):
    @pytest.fixture
    def contract_backend(self, export: Path) -> ContractBackend:
        options = {
            "table": "FISHER_REG",
            "citizen_ids": [{"column": "PID", "as": "PID13"}],
            "allow_scan": True,
            "reload": {"interval": 3600, "settle": 0},
        }
        return ContractBackend(
            factory=files.CSV,
            options={**options, "path": str(export)},
            unreachable={**options, "path": str(export.with_name("missing.csv"))},
            rows=Call({"query": "SELECT PID13, SEX FROM FISHER_REG"}),
            slow=Call(
                {
                    "query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                    "SELECT max(x) AS n FROM c"
                }
            ),
            refused=Call({"query": "SELECT json(:v) AS j FROM FISHER_REG"}, {"v": "{" + SECRET}),
        )


def test_acquire_failed_is_busy_only_when_the_pool_is_full() -> None:
    limits = BackendLimits(pool_size=2, acquire_timeout=0.5, query_timeout=1.0)
    busy = limits.acquire_failed(2)
    assert isinstance(busy, BackendBusy) and "all 2 connections busy for 0.5s" in str(busy)
    # the pool had room: the time went into connecting
    assert isinstance(limits.acquire_failed(1), BackendUnavailable)
