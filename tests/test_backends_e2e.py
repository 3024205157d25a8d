"""The same legacy register on SQLite, PostgreSQL and MariaDB gives the same LC2 answers.

Each backend holds the data the way such a system really does: SQLite with
TIS-620 bytes in TEXT columns, MariaDB with TIS-620 bytes in a latin1 column
(the driver hands back mojibake), PostgreSQL with UTF-8 text and a BE year in
a CHAR(8), a SOAP service (spyne) and a legacy JSON endpoint with the same
columns as elements and keys.  The output mapping is identical; so must the
answers be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import asyncpg
import pytest

from gateway.app import build_admin_app, build_app, build_runtime
from tests.conftest import MysqlServer, PgServer
from tests.files_support import write_csv, write_dbf
from tests.http_upstream import running_http_upstream
from tests.soap_server import running_soap_server
from tests.support import (
    EXPECTED,
    NO_RECORD_PID,
    PEOPLE,
    SQLITE_QUERY,
    MakeClient,
    audit_rows,
    base_config,
    fisher_service,
    lc2_headers,
    make_sqlite_db,
    plain_pid,
    settings_from,
    sqlite_backend,
)

PG_QUERY = (
    "SELECT pid, fullname, sex, birth_date, moo FROM fisher_reg "
    "WHERE regexp_replace(pid, '[- ]', '', 'g') = :personalId"
)
MYSQL_QUERY = (
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)


async def _load_pg(server: PgServer) -> None:
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS fisher_reg; CREATE TABLE fisher_reg (pid CHAR(17), "
            "fullname VARCHAR(100), sex CHAR(1), birth_date CHAR(8), moo VARCHAR(2))"
        )
        await conn.executemany(
            "INSERT INTO fisher_reg VALUES ($1, $2, $3, $4, $5)",
            [(p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]) for p in PEOPLE],
        )
    finally:
        await conn.close()


async def _load_mysql(server: MysqlServer) -> None:
    conn = await asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=server.database,
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("DROP TABLE IF EXISTS FISHER_REG")
            await cur.execute(
                "CREATE TABLE FISHER_REG (PID CHAR(17), "
                "FULLNAME VARCHAR(100) CHARACTER SET latin1, SEX CHAR(1), BIRTH_DATE CHAR(8), "
                "MOO VARCHAR(2))"
            )
            for p in PEOPLE:
                # raw TIS-620 bytes into a latin1 column: the classic legacy mistake
                await cur.execute(
                    "INSERT INTO FISHER_REG VALUES (%s, %s, %s, %s, %s)",
                    (p["PID"], p["FULLNAME"].encode("cp874"), p["SEX"], p["BIRTH_DATE"], p["MOO"]),
                )
        await conn.commit()
    finally:
        conn.close()


# The same register behind a SOAP service (spyne) and a legacy JSON endpoint (aiohttp)
SOAP_OPERATION = {
    "name": "GetFisher",
    "request": {"personalId": "{personalId}"},
    "rows": "GetFisherResponse/GetFisherResult/FisherRecord",
}
HTTP_OPERATION = {"path": "/fisher", "query": {"pid": "{personalId}"}, "rows": "data"}
SOAP_WSDL = Path(__file__).resolve().parent.parent / "config" / "vessels" / "vessel-licence.wsdl"

BACKENDS = ["sqlite", "postgresql", "mysql", "soap", "http"]
# The same register through ODBC drivers (unixODBC: psqlodbc, MariaDB Connector/ODBC,
# sqliteodbc) and as the nightly export files an older system writes (dBase with cp874
# text and a memo, CSV in cp874), each loaded the way that system really holds it.
MORE_BACKENDS = ["odbc-postgresql", "odbc-mariadb", "odbc-sqlite", "dbf", "csv"]
BACKENDS += MORE_BACKENDS
FILE_QUERY = "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG WHERE PID13 = :personalId"
Operation = str | dict[str, Any]  # an SQL query, or a document backend's operation block


def _fisher(op: Operation) -> dict[str, Any]:
    if isinstance(op, str):
        return fisher_service("legacy", op)
    return fisher_service("legacy", "", operation=op)


def _odbc_pg(pg: PgServer) -> str:
    dsn = urlsplit(pg.dsn)
    return (
        f"Driver={{PostgreSQL Unicode}};Server={dsn.hostname};Port={dsn.port or 5432};"
        f"Database={dsn.path.lstrip('/')};UID={dsn.username}"
    )


def _odbc_mariadb(my: MysqlServer) -> str:
    return (
        f"Driver={{MariaDB Unicode}};Server={my.host};Port={my.port};"
        f"Database={my.database};UID={my.user}"
    )


def _more_backend(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, health: dict[str, float]
) -> tuple[str, dict[str, Any], str]:
    """ODBC and file variants of the register, with the query each needs."""
    common = {"health": health, "query_timeout": 5}
    files = {"table": "FISHER_REG", "citizen_ids": [{"column": "PID", "as": "PID13"}]}
    if kind == "odbc-postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        asyncio.run(_load_pg(pg))
        return kind, {"type": "odbc", "connection_string": _odbc_pg(pg), **common}, PG_QUERY
    if kind == "odbc-mariadb":
        my: MysqlServer = request.getfixturevalue("mysql_server")
        asyncio.run(_load_mysql(my))
        # utf8mb4 session: the latin1 column arrives as mojibake, as through asyncmy
        cs = _odbc_mariadb(my)
        return kind, {"type": "odbc", "connection_string": cs, **common}, MYSQL_QUERY
    if kind == "odbc-sqlite":
        db = make_sqlite_db(tmp_path / "legacy.sqlite")
        cs = f"Driver={{SQLite3}};Database={db};NoCreat=1"
        # TIS-620 bytes in TEXT columns: fetched as SQL_CHAR and decoded as cp874
        bcfg = {"type": "odbc", "connection_string": cs, "decoding": {"char": "cp874"}}
        return kind, {**bcfg, **common}, SQLITE_QUERY
    if kind == "dbf":
        path = write_dbf(tmp_path / "FISHER.DBF", PEOPLE)  # cp874, memo, a deleted record
        return kind, {"type": "dbf", "path": str(path), **files, **common}, FILE_QUERY
    rows = [[p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]] for p in PEOPLE]
    path = write_csv(tmp_path / "FISHER.CSV", rows, encoding="cp874")
    return kind, {"type": "csv", "path": str(path), **files, **common}, FILE_QUERY


def _unreachable(kind: str, bcfg: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    if kind == "odbc-postgresql":
        cs = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=none;UID=postgres"
        return {**bcfg, "connection_string": cs}
    if kind == "odbc-mariadb":
        cs = "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Database=none;UID=root"
        return {**bcfg, "connection_string": cs}
    if kind == "odbc-sqlite":
        cs = f"Driver={{SQLite3}};Database={tmp_path / 'missing.sqlite'};NoCreat=1"
        return {**bcfg, "connection_string": cs}
    return {**bcfg, "path": str(tmp_path / "missing" / Path(bcfg["path"]).name)}


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, Any], Operation]]:
    kind: str = request.param
    health = {"interval": 0.2, "timeout": 1}
    if kind in MORE_BACKENDS:
        yield _more_backend(kind, request, tmp_path, health)
        return
    if kind == "soap":
        with running_soap_server() as srv:
            bcfg = {"type": "soap", "wsdl": srv.wsdl_url, "health": health, "query_timeout": 5}
            yield kind, bcfg, SOAP_OPERATION
    elif kind == "http":
        with running_http_upstream() as up:
            bcfg = {"type": "http", "base_url": up.url, "health": health, "query_timeout": 5}
            yield kind, bcfg, HTTP_OPERATION
    elif kind == "sqlite":
        db = make_sqlite_db(tmp_path / "legacy.sqlite")
        yield kind, sqlite_backend(db), SQLITE_QUERY
    elif kind == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        asyncio.run(_load_pg(pg))
        yield (
            kind,
            {"type": "postgresql", "dsn": pg.dsn, "health": health, "query_timeout": 5},
            PG_QUERY,
        )
    else:
        my: MysqlServer = request.getfixturevalue("mysql_server")
        asyncio.run(_load_mysql(my))
        yield (
            kind,
            {
                "type": "mysql",
                "host": my.host,
                "port": my.port,
                "user": my.user,
                "database": my.database,
                "health": health,
                "query_timeout": 5,
            },
            MYSQL_QUERY,
        )


def _subset(actual: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        for k, v in expected.items():
            _subset(actual[k], v)
    else:
        assert actual == expected


async def test_same_answers_on_every_backend(
    backend: tuple[str, dict[str, Any], Operation], tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    kind, bcfg, query = backend
    settings = settings_from(base_config(tmp_path, {"legacy": bcfg}, {"fisher": _fisher(query)}))
    rt = build_runtime(settings)
    client = await aiohttp_client(build_app(rt))
    admin = await aiohttp_client(build_admin_app(rt))

    for person in PEOPLE:
        resp = await client.get(
            "/api/v1/fisher", params={"personalId": person["pid"]}, headers=lc2_headers()
        )
        assert resp.status == 200, (kind, await resp.text())
        data = (await resp.json())["data"]
        assert len(data) == 1, kind
        _subset(data[0], EXPECTED[person["pid"]])

    empty = await client.get(
        "/api/v1/fisher", params={"personalId": NO_RECORD_PID}, headers=lc2_headers()
    )
    assert (await empty.json())["data"] == []

    # the sandbox answers its own invented person, whose ID its rows hold
    sandbox_pid = plain_pid(str(settings.services["fisher"].sandbox_rows[0]["PID"]))
    sandbox = await client.get(
        "/api/v1/fisher/sandbox", params={"personalId": sandbox_pid}, headers=lc2_headers()
    )
    assert sandbox.status == 200 and len((await sandbox.json())["data"]) == 2

    bad = await client.get(
        "/api/v1/fisher", params={"personalId": "1' OR 1=1 --"}, headers=lc2_headers()
    )
    assert bad.status == 400

    for _ in range(50):  # first probe may still be on its way
        if (await client.get("/api/v1/fisher/health")).status == 200:
            break
        await asyncio.sleep(0.05)
    health = await client.get("/api/v1/fisher/health")
    assert health.status == 200, await health.text()
    assert (await health.json())["status"] == "up"

    metrics = await (await admin.get("/metrics")).text()
    assert 'lc2_gateway_backend_up{backend="legacy"} 1.0' in metrics
    assert (
        'lc2_gateway_requests_total{code="000",kind="data",service="fisher",status="200"} '
        f"{len(PEOPLE) + 1}.0"
    ) in metrics
    assert (
        'lc2_gateway_requests_total{code="104",kind="data",service="fisher",status="400"} 1.0'
        in metrics
    )
    # one field of one person is unreadable legacy data: nulled and counted
    assert 'lc2_gateway_mapping_failures_total{service="fisher"} 1.0' in metrics
    assert "lc2_gateway_backend_pool_connections" in metrics
    assert "lc2_gateway_audit_queue_depth 0.0" in metrics

    await client.close()
    rows = audit_rows(settings.audit.path)
    assert len(rows) == len(PEOPLE) + 3
    assert sum(r["kind"] == "sandbox" for r in rows) == 1


async def test_backend_down_sandbox_still_answers(
    backend: tuple[str, dict[str, Any], Operation], tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """Real endpoint 503 fast when the backend can not be reached; sandbox unaffected."""
    kind, bcfg, query = backend
    if kind in MORE_BACKENDS:
        bcfg = _unreachable(kind, bcfg, tmp_path)
    elif kind == "soap":
        bcfg = {**bcfg, "wsdl": str(SOAP_WSDL), "endpoint": "http://127.0.0.1:1/"}
    elif kind == "http":
        bcfg = {**bcfg, "base_url": "http://127.0.0.1:1"}
    elif kind == "sqlite":
        bcfg = {**bcfg, "path": str(tmp_path / "missing.sqlite")}
    elif kind == "postgresql":
        bcfg = {**bcfg, "dsn": "postgresql://postgres@127.0.0.1:1/none"}
    else:
        bcfg = {**bcfg, "port": 1}
    settings = settings_from(base_config(tmp_path, {"legacy": bcfg}, {"fisher": _fisher(query)}))
    client = await aiohttp_client(build_app(build_runtime(settings)))
    real = await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert real.status == 503, await real.text()
    assert (await real.json())["responseCode"] == "301"
    sandbox = await client.get(
        "/api/v1/fisher",
        params={"personalId": PEOPLE[0]["pid"]},
        headers=lc2_headers(**{"X-Use-Sandbox": "1"}),
    )
    assert sandbox.status == 200
    await asyncio.sleep(0.3)
    assert (await client.get("/api/v1/fisher/health")).status == 503
    gw = await client.get("/health")
    assert gw.status == 503 and (await gw.json())["status"] == "down"
