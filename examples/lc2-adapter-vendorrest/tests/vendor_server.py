"""A small paged vendor REST API on loopback, as the adapter's tests and CI need it.

``GET /licences?owner=...&page=N&per_page=M`` pages through an owner's licences;
``GET /slow`` answers only when the server stops; an owner ID that is not 13
digits is refused with 400 and an error document that quotes it.
Run as a script it prints its URL and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from aiohttp import web

OWNER = "3100600123450"  # a valid citizen ID; holds five licences
LICENCES = [
    {"licenceNo": f"VL-2567-{n:04d}", "owner": OWNER, "issued": f"2567-0{n}-01"}
    for n in range(1, 6)
]


@dataclass
class VendorServer:
    url: str = ""
    pages_served: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


def _app(state: VendorServer) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/health")
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/licences")
    async def licences(request: web.Request) -> web.Response:
        owner = request.query.get("owner", "")
        if not (owner.isdigit() and len(owner) == 13):
            error = {"code": "INVALID_OWNER", "message": f"owner {owner} is not a citizen ID"}
            return web.json_response({"error": error}, status=400)
        page, per_page = int(request.query["page"]), int(request.query["per_page"])
        mine = [lic for lic in LICENCES if lic["owner"] == owner]
        start = (page - 1) * per_page
        state.pages_served += 1
        more = start + per_page < len(mine)
        return web.json_response(
            {"items": mine[start : start + per_page], "next_page": page + 1 if more else None}
        )

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await state.stopping.wait()
        return web.json_response({"items": [], "next_page": None})

    app = web.Application()
    app.add_routes(routes)
    return app


@contextmanager
def running_vendor_server(port: int = 0) -> Iterator[VendorServer]:
    """The server in its own thread and event loop on 127.0.0.1, stopped on exit."""
    state = VendorServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(_app(state))

    async def start() -> None:
        state.stopping = asyncio.Event()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        state.url = f"http://127.0.0.1:{bound}"
        ready.set()

    def run() -> None:
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("vendor server did not start")
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(state.stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description="paged vendor REST API on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with running_vendor_server(args.port) as srv:
        print(srv.url, flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
