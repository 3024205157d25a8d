"""The SQL adapters' ``stream`` (what ``profile`` reads with): every row once, in batches
of the asked size, a batch over query_timeout stopped, and a stream left early gives
its connection back so the next call works."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters import mysql, odbc, postgresql, sqlite
from adapters._sql import SqlOperation
from gateway.adapter import BackendLimits, BackendTimeout, Row, StreamingAdapter
from tests.conftest import MysqlServer, PgServer

LIMITS = BackendLimits(pool_size=1, acquire_timeout=2.0, query_timeout=1.0)
ROWS = {  # 50 rows, and a statement that sleeps before its first row
    "sqlite": ("SELECT n FROM t", None),
    "postgresql": ("SELECT generate_series(1, 50) AS n", "SELECT pg_sleep(3) AS n"),
    "mysql": ("SELECT seq AS n FROM seq_1_to_50", "SELECT SLEEP(3) AS n"),
    "odbc": ("SELECT generate_series(1, 50) AS n", "SELECT pg_sleep(3) AS n"),
}


@pytest.fixture(params=sorted(ROWS))
def backend(
    request: pytest.FixtureRequest, pg_server: PgServer, mysql_server: MysqlServer, tmp_path: Path
) -> tuple[str, Any, Any]:
    kind: str = request.param
    if kind == "sqlite":
        path = tmp_path / "t.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (n INTEGER)")
            db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1, 51)])
        db.close()
        return kind, sqlite.FACTORY, sqlite.SqliteOptions(path=path)
    if kind == "postgresql":
        return kind, postgresql.FACTORY, postgresql.PostgresOptions(dsn=pg_server.dsn)
    if kind == "mysql":
        my = mysql_server
        opts = mysql.MysqlOptions(host=my.host, port=my.port, user=my.user, database=my.database)
        return kind, mysql.FACTORY, opts
    dsn = urlsplit(pg_server.dsn)
    cs = (
        f"Driver={{PostgreSQL Unicode}};Server={dsn.hostname};Port={dsn.port or 5432};"
        f"Database={dsn.path.lstrip('/')}"
    )
    return kind, odbc.FACTORY, odbc.OdbcOptions(connection_string=cs, user=dsn.username)


async def _all(stream: AsyncIterator[Sequence[Row]]) -> list[int]:
    sizes = []
    async for rows in stream:
        sizes.append(len(rows))
    return sizes


async def test_stream_reads_every_row_in_batches(backend: tuple[str, Any, Any]) -> None:
    kind, factory, options = backend
    adapter = factory.create("legacy", options, LIMITS)
    await adapter.open()
    try:
        assert isinstance(adapter, StreamingAdapter)
        sql, slow = ROWS[kind]
        op = factory.prepare(options, SqlOperation(query=sql, max_rows=10), [])
        assert await _all(adapter.stream(op, {}, 7)) == [7] * 7 + [1]  # max_rows not applied

        early = adapter.stream(op, {}, 5)
        async for rows in early:
            assert [int(str(r["n"])) for r in rows] == [1, 2, 3, 4, 5]
            break
        await early.aclose()  # type: ignore[attr-defined]
        assert len(await adapter.fetch(op, {})) == 10  # the one connection is free again

        if slow is not None:
            slow_op = factory.prepare(options, SqlOperation(query=slow), [])
            with pytest.raises(BackendTimeout):
                await _all(adapter.stream(slow_op, {}, 5))
            assert len(await adapter.fetch(op, {})) == 10
    finally:
        await adapter.close()
