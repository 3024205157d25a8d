"""The peer: the LC2 provider a department would write by hand instead of the gateway.

FastAPI on uvicorn (uvloop, httptools) + asyncpg (aiosqlite for the demo
database) + orjson, the same SQL and URL paths as the gateway.  Unlike the
floor it does the checks an LC2 provider cannot do without: Basic credentials
compared with a constant, the two LC2 headers required, the citizen ID's
check digit validated.  No mapping, no audit, no metrics, no access log.

    python -m bench.peer --port 8091 --pg postgresql://postgres@127.0.0.1/lc2_bench

Its dependencies are the ``bench`` extra (``pip install -e '.[bench]'``),
never the gateway's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.floor import _SANDBOX_ROWS, arguments, close_demo, listening_socket, open_demo
from bench.workload import (
    DEMO_FISHER_SQL,
    FISHER_SQL,
    VESSEL_SQL,
    authorization,
    numbered,
    pid_forms,
    qmarked,
)

__all__ = ["build_app", "main"]

_JSON = "application/json; charset=utf-8"
_CREDENTIALS = authorization().encode()  # the constant a hand-written provider compares with


def _answer(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=_JSON)


def _error(status: int, code: str, message: str) -> Response:
    return _answer({"responseCode": code, "message": message, "data": []}, status)


def _valid_pid(pid: str) -> bool:
    """13 ASCII digits, the last the mod-11 check digit of the first twelve.

    Written out as a department would, not borrowed from the gateway: the peer shares
    no code with what it is compared with.
    """
    if len(pid) != 13 or not pid.isascii() or not pid.isdigit():
        return False
    total = sum(int(d) * (13 - i) for i, d in enumerate(pid[:12]))
    return (11 - total % 11) % 10 == int(pid[12])


def _refused(request: Request) -> Response | None:
    """What every lookup checks before its query; None when the call may go on."""
    headers = request.headers
    if not hmac.compare_digest(headers.get("authorization", "").encode(), _CREDENTIALS):
        return _error(401, "401", "bad credentials")
    if not headers.get("x-office-request") or not headers.get("x-user-request"):
        return _error(400, "400", "X-Office-Request and X-User-Request are required")
    return None


def build_app(pg_dsn: str | None, pool_size: int, sqlite_path: str | None) -> FastAPI:
    fisher, vessel = numbered(FISHER_SQL), numbered(VESSEL_SQL)
    demo = qmarked(DEMO_FISHER_SQL)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if pg_dsn:
            state["pg"] = await asyncpg.create_pool(pg_dsn, min_size=0, max_size=pool_size)
        conns = state["sqlite"] = await open_demo(sqlite_path)
        yield
        await close_demo(conns)
        if pg_dsn:
            await state["pg"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    def checked(request: Request, personal_id: str) -> Response | None:
        refused = _refused(request)
        if refused is not None:
            return refused
        if not _valid_pid(personal_id):
            return _error(400, "400", "personalId must be 13 digits with a valid check digit")
        return None

    def pg_lookup(sql: str) -> Any:
        async def handler(request: Request, personalId: str = "") -> Response:
            refused = checked(request, personalId)
            if refused is not None:
                return refused
            rows = await state["pg"].fetch(sql, *pid_forms(personalId))
            return _answer(
                {"responseCode": "000", "message": "success", "data": [dict(r) for r in rows]}
            )

        return handler

    async def demo_lookup(request: Request, personalId: str = "") -> Response:
        refused = checked(request, personalId)
        if refused is not None:
            return refused
        conns: asyncio.Queue[aiosqlite.Connection] = state["sqlite"]
        conn = await conns.get()
        try:
            async with conn.execute(demo, pid_forms(personalId)) as cur:
                rows = await cur.fetchall()
        finally:
            conns.put_nowait(conn)
        return _answer(
            {"responseCode": "000", "message": "success", "data": [dict(r) for r in rows]}
        )

    async def sandbox(request: Request, personalId: str = "") -> Response:
        refused = checked(request, personalId)
        if refused is not None:
            return refused
        return _answer({"responseCode": "000", "message": "success", "data": _SANDBOX_ROWS})

    async def health() -> Response:
        return _answer({"status": "up"})

    app.add_api_route("/api/v1/fisher", pg_lookup(fisher), methods=["GET"])
    app.add_api_route("/api/v1/vessel", pg_lookup(vessel), methods=["GET"])
    app.add_api_route("/api/v1/fisher/sandbox", sandbox, methods=["GET"])
    app.add_api_route("/api/v1/demo-fisher", demo_lookup, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])
    return app


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv)
    sock = listening_socket(args)
    config = uvicorn.Config(
        build_app(args.pg, args.pool, args.sqlite),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
