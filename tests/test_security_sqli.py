"""SQL injection in every parameter type, against real PostgreSQL and MariaDB.

Each service binds one parameter of one type: a citizen ID, a string with a
pattern, a string without one (so payloads do reach the database, as
values), an integer and a date.  Every payload must be answered 400, or 200
with no rows; none may take longer than a sleep would, and afterwards the
tables, their rows and the list of tables are exactly as they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import pytest

from gateway.app import build_app, build_runtime
from tests.conftest import MysqlServer, PgServer
from tests.support import MakeClient, base_config, lc2_headers, make_pid, settings_from

OWNER = make_pid("310050123456")
ROWS = [
    (OWNER, "นายทดสอบ ระบบ", "TH-1234", 120, "25670115"),
    (make_pid("310050123457"), "นางลอง ข้อมูล", "TH-5678", 45, "25651231"),
]
CANARY = "canary-value-that-must-never-leave"

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "1' OR '1'='1' /*",
    "'; DROP TABLE citizen; --",
    "1; DROP TABLE citizen",
    "'); DELETE FROM citizen; --",
    "' UNION SELECT secret, secret, secret, 1, secret FROM canary --",
    "' UNION ALL SELECT NULL,NULL,NULL,NULL,NULL --",
    "\\' OR 1=1 -- ",
    "\\'; DROP TABLE citizen; -- ",
    "' OR pg_sleep(3) IS NULL --",
    "' OR SLEEP(3) --",
    "1 AND (SELECT 1 FROM (SELECT SLEEP(3))x)",
    "1' AND 1=CAST((SELECT secret FROM canary) AS INT) --",
    "%' OR '%'='",
    "ʼ OR 1=1 --",
    "＇ OR 1=1 --",
    "\xbf' OR 1=1 --",
    "'\x00 OR 1=1 --",
    "1/**/OR/**/1=1",
    "$1 OR 1=1",
    ":personalId OR 1=1",
    "%s OR 1=1",
    "?) OR (1=1",
    "1 OR 1=1",
    "0x27204f5220313d31",
    "TH-1234' OR 'a'='a",
    "TH-1234",  # the real value of the patterned string: must still only find its own row
    "99999999999999999999",
    "-9223372036854775809",
    "1e309",
    "2567-01-15' OR '1'='1",
    "25670115; DROP TABLE citizen",
]

# name -> (parameter type spec, the column it is compared with)
PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "byPid": ({"type": "citizen_id"}, "pid"),
    "byVessel": ({"type": "string", "pattern": "[A-Z]{2}-[0-9]{1,6}", "max_length": 20}, "vessel"),
    "byName": ({"type": "string", "max_length": 200}, "name"),
    "byTonnage": ({"type": "integer", "minimum": 0, "maximum": 100000}, "tonnage"),
    "byDate": ({"type": "date", "era": "be", "date_bind": "be_yyyymmdd"}, "reg_date"),
}
OUTPUT = {
    "personalId": {"column": "pid", "transform": ["pid"]},
    "name": {"column": "name", "transform": ["clean"]},
    "vessel": "vessel",
    "tonnage": {"column": "tonnage", "transform": ["int"]},
    "registered": {"column": "reg_date", "transform": ["be_date"]},
}


def _services(table: str) -> dict[str, Any]:
    return {
        name: {
            "backend": "legacy",
            "path": name,
            "params": {"v": spec},
            "operation": {
                "query": f"SELECT pid, name, vessel, tonnage, reg_date FROM {table} "
                f"WHERE {column} = :v"
            },
            "output": OUTPUT,
        }
        for name, (spec, column) in PARAMS.items()
    }


async def _pg_state(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM citizen ORDER BY pid")
        canary = await conn.fetch("SELECT * FROM canary")
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "ORDER BY 1"
        )
    finally:
        await conn.close()
    return hashlib.sha256(repr((rows, canary, tables)).encode()).hexdigest()


async def _load_pg(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS citizen, canary; "
            "CREATE TABLE citizen (pid CHAR(13) PRIMARY KEY, name TEXT, vessel TEXT, "
            "tonnage INTEGER, reg_date CHAR(8)); CREATE TABLE canary (secret TEXT)"
        )
        await conn.executemany("INSERT INTO citizen VALUES ($1, $2, $3, $4, $5)", ROWS)
        await conn.execute("INSERT INTO canary VALUES ($1)", CANARY)
    finally:
        await conn.close()


def _my_connect(server: MysqlServer) -> Awaitable[Any]:
    return asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=server.database,
        charset="utf8mb4",
    )


async def _load_mysql(server: MysqlServer) -> None:
    conn = await _my_connect(server)
    try:
        async with conn.cursor() as cur:
            await cur.execute("DROP TABLE IF EXISTS CITIZEN_REG, CANARY")
            await cur.execute(
                "CREATE TABLE CITIZEN_REG (pid CHAR(13) PRIMARY KEY, name VARCHAR(200), "
                "vessel VARCHAR(20), tonnage INT, reg_date CHAR(8)) CHARACTER SET utf8mb4"
            )
            await cur.execute("CREATE TABLE CANARY (secret VARCHAR(100))")
            for row in ROWS:
                await cur.execute("INSERT INTO CITIZEN_REG VALUES (%s, %s, %s, %s, %s)", row)
            await cur.execute("INSERT INTO CANARY VALUES (%s)", (CANARY,))
        await conn.commit()
    finally:
        conn.close()


async def _mysql_state(server: MysqlServer) -> str:
    conn = await _my_connect(server)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT * FROM CITIZEN_REG ORDER BY pid")
            rows = await cur.fetchall()
            await cur.execute("SELECT * FROM CANARY")
            canary = await cur.fetchall()
            await cur.execute("SHOW TABLES")
            tables = await cur.fetchall()
    finally:
        conn.close()
    return hashlib.sha256(repr((rows, canary, sorted(tables))).encode()).hexdigest()


@pytest.fixture(params=["postgresql", "mysql"])
def database(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[dict[str, Any], str, Callable[[], Awaitable[str]]]]:
    health = {"interval": 5, "timeout": 2}
    if request.param == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        asyncio.run(_load_pg(pg.dsn))
        backend = {"type": "postgresql", "dsn": pg.dsn, "health": health, "query_timeout": 5}
        yield backend, "citizen", lambda: _pg_state(pg.dsn)
    else:
        my: MysqlServer = request.getfixturevalue("mysql_server")
        asyncio.run(_load_mysql(my))
        backend = {
            "type": "mysql",
            "host": my.host,
            "port": my.port,
            "user": my.user,
            "database": my.database,
            "health": health,
            "query_timeout": 5,
        }
        yield backend, "CITIZEN_REG", lambda: _mysql_state(my)


async def test_injection_in_every_parameter_type_has_no_effect(
    database: tuple[dict[str, Any], str, Callable[[], Awaitable[str]]],
    tmp_path: Path,
    aiohttp_client: MakeClient,
) -> None:
    backend, table, state = database
    before = await state()
    cfg = base_config(tmp_path, {"legacy": backend}, _services(table))
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    client = await aiohttp_client(build_app(build_runtime(settings_from(cfg))))

    # the services work: each finds the owner's row by its own legitimate value
    for name, value in (
        ("byPid", OWNER),
        ("byVessel", "TH-1234"),
        ("byName", "นายทดสอบ ระบบ"),
        ("byTonnage", "120"),
        ("byDate", "2567-01-15"),
    ):
        resp = await client.get(f"/api/v1/{name}", params={"v": value}, headers=lc2_headers())
        data = (await resp.json())["data"]
        assert resp.status == 200 and [r["personalId"] for r in data] == [OWNER], (name, data)

    answered: dict[str, set[int]] = {name: set() for name in PARAMS}
    for name in PARAMS:
        for payload in PAYLOADS:
            t0 = time.perf_counter()
            resp = await client.get(f"/api/v1/{name}", params={"v": payload}, headers=lc2_headers())
            took = time.perf_counter() - t0
            body = await resp.json()
            assert took < 2.0, (name, payload, "a sleep ran in the database")
            assert CANARY not in await resp.text()
            if payload == "TH-1234" and name == "byVessel":
                assert [r["vessel"] for r in body["data"]] == ["TH-1234"]
                continue
            assert resp.status == 400 or (resp.status == 200 and body["data"] == []), (
                name,
                payload,
                resp.status,
                body,
            )
            if resp.status == 400:
                assert body["responseCode"] == "104"
            answered[name].add(resp.status)

    # typed parameters refuse every payload; the free text one carries each to the database,
    # bound as a value, and finds nothing (NUL and control characters are refused first)
    assert answered["byPid"] == answered["byTonnage"] == answered["byDate"] == {400}
    assert answered["byName"] == {200, 400}
    assert await state() == before, "a table, a row or the list of tables changed"
