"""A live gateway on loopback, served in-process by :func:`gateway.server.serve`.

Used by the security tests that need the production listener (size limits, the
request-head deadline, TLS, the admin port) rather than aiohttp's test client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.runtime import Settings
from gateway.server import serve
from tests.support import (
    SQLITE_QUERY,
    base_config,
    fisher_service,
    free_port,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)

HEADER_TIMEOUT = 1.5


def live_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """A config for a live gateway: the fisher register, a service with a text path parameter."""
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    vessel = {
        **fisher_service("legacy", SQLITE_QUERY),
        "path": "vessel/{name}",
        "params": {"name": {"type": "string", "max_length": 40}},
        "operation": {"query": SQLITE_QUERY.replace(":personalId", ":name")},
    }
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY), "vessel": vessel}
    services.update(extra.pop("services", {}))
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, services)
    cfg["listen"] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "header_timeout": HEADER_TIMEOUT,
        "max_line_size": 1024,
        "max_field_size": 1024,
        "max_headers": 24,
        **extra.pop("listen", {}),
    }
    cfg["admin"] = {"enabled": True, "host": "127.0.0.1", "port": free_port()}
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    cfg.update(extra)
    return cfg


@dataclass
class Live:
    settings: Settings
    url: str
    admin_url: str
    port: int

    async def raw(self, data: bytes) -> bytes:
        """Write ``data`` to a fresh connection; everything the server sends until it closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 5.0)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def live_gateway(
    cfg: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> AsyncIterator[Live]:
    settings = settings_from(cfg, env)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop, on_ready=ready.set))
    try:
        done, _ = await asyncio.wait(
            [task, asyncio.create_task(ready.wait())],
            timeout=15,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if task in done:
            task.result()  # serve() failed at start-up: raise why
        assert ready.is_set(), "gateway did not start"
        scheme = "https" if settings.security.tls is not None else "http"
        listen, admin = settings.listen, settings.admin
        yield Live(
            settings,
            f"{scheme}://127.0.0.1:{listen.port}",
            f"http://127.0.0.1:{admin.port}",
            listen.port,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
