"""The floor: the least a Python LC2 provider can do for the same lookups.

aiohttp + uvloop + asyncpg (aiosqlite for the demo database) + orjson, the
same SQL as the gateway and the same URL paths, and nothing else: no header
or parameter validation, no credentials, no mapping, no audit, no metrics,
no logging.  Rows go out as the driver returns them, in the LC2 envelope.

    python -m bench.floor --port 8090 --pg postgresql://postgres@127.0.0.1/lc2_bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import asyncpg
import orjson
import uvloop
from aiohttp import web

from bench.workload import DEMO_FISHER_SQL, FISHER_SQL, VESSEL_SQL, numbered, pid_forms, qmarked

__all__ = ["arguments", "build_app", "close_demo", "listening_socket", "main", "open_demo"]

_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
_SANDBOX_ROWS = [
    {"reg_no": f"SB-{i}", "pid": "1-1017-00203-45-0", "fullname": "นายทดสอบ  ระบบ",
     "sex": "1", "birth_date": "25270229", "status": "A"}
    for i in range(3)
]
_PG = web.AppKey("pg", asyncpg.Pool)
_SQLITE = web.AppKey("sqlite", asyncio.Queue)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp874", "replace")


async def open_demo(path: str | None) -> asyncio.Queue[aiosqlite.Connection]:
    """Four read-only connections to the demo database (none without a path)."""
    conns: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
    if path:
        for _ in range(4):
            conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
            conn.text_factory = _text
            conn.row_factory = sqlite3.Row
            conns.put_nowait(conn)
    return conns


async def close_demo(conns: asyncio.Queue[aiosqlite.Connection]) -> None:
    while not conns.empty():
        await conns.get_nowait().close()


def _envelope(data: list[Any]) -> web.Response:
    body = orjson.dumps({"responseCode": "000", "message": "success", "data": data})
    return web.Response(body=body, headers=_HEADERS)


def build_app(pg_dsn: str | None, pool_size: int, sqlite_path: str | None) -> web.Application:
    app = web.Application()
    fisher, vessel = numbered(FISHER_SQL), numbered(VESSEL_SQL)
    demo = qmarked(DEMO_FISHER_SQL)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        if pg_dsn:
            app[_PG] = await asyncpg.create_pool(pg_dsn, min_size=0, max_size=pool_size)
        conns = app[_SQLITE] = await open_demo(sqlite_path)
        yield
        await close_demo(conns)
        if pg_dsn:
            await app[_PG].close()

    app.cleanup_ctx.append(resources)

    def pg_lookup(sql: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            args = pid_forms(request.query.get("personalId", ""))
            rows = await request.app[_PG].fetch(sql, *args)
            return _envelope([dict(r) for r in rows])

        return handler

    async def demo_lookup(request: web.Request) -> web.Response:
        args = pid_forms(request.query.get("personalId", ""))
        conns = request.app[_SQLITE]
        conn = await conns.get()
        try:
            async with conn.execute(demo, args) as cur:
                rows = await cur.fetchall()
        finally:
            conns.put_nowait(conn)
        return _envelope([dict(r) for r in rows])

    async def sandbox(_: web.Request) -> web.Response:
        return _envelope(_SANDBOX_ROWS)

    async def health(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"status": "up"}), headers=_HEADERS)

    app.router.add_get("/api/v1/fisher", pg_lookup(fisher))
    app.router.add_get("/api/v1/vessel", pg_lookup(vessel))
    app.router.add_get("/api/v1/fisher/sandbox", sandbox)
    app.router.add_get("/api/v1/demo-fisher", demo_lookup)
    app.router.add_get("/health", health)
    return app


async def _serve(args: argparse.Namespace) -> None:
    app = build_app(args.pg, args.pool, args.sqlite)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    await web.SockSite(runner, listening_socket(args)).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def arguments(doc: str | None, argv: list[str] | None) -> argparse.Namespace:
    """The command line the floor and the peer share."""
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pg", help="PostgreSQL DSN of the benchmark database")
    p.add_argument("--pool", type=int, default=8, help="asyncpg pool size (as the gateway's)")
    p.add_argument("--sqlite", help="the demo SQLite database")
    p.add_argument("--reuse-port", action="store_true", help="share the port (SO_REUSEPORT)")
    return p.parse_args(argv)


def listening_socket(args: argparse.Namespace) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    return sock


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv)
    with contextlib.suppress(KeyboardInterrupt, web.GracefulExit):
        uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
