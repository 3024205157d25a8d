"""Maintenance mode: an operator switch that every worker sees.

The switch is a file: while it exists, data calls are answered 503 with the
file's first line as the message, and health and metrics stay up.  A file
works the same for one process or several workers, survives restarts, and
needs no credentials beyond the server itself (``lc2-gateway maintenance
on|off`` writes or removes it).  It is checked once a second, off the
request path.

A fleet keeps the switch in the shared state store instead, so switching it
at one gateway switches every gateway: each sees it at its next check, at
most a second later (plus the store's command timeout).  While the store is
unreachable each gateway keeps the state it last saw.  The file still
switches its own gateway alone (``maintenance on --local``): that is how one
server of a fleet is drained before it is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from gateway.sharedstate import SharedState, StoreUnreachable

__all__ = ["MaintenanceSwitch", "read_message"]

log = logging.getLogger("lc2_gateway.maintenance")
_POLL = 1.0


def read_message(path: Path) -> str | None:
    """The switch's message if the file exists, else None."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"maintenance ({exc.strerror})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:300] or "under maintenance"


class MaintenanceSwitch:
    def __init__(self, path: Path | None, shared: SharedState | None = None) -> None:
        self.path = path
        self.message: str | None = None
        self._shared = shared
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.message is not None

    async def refresh(self) -> None:
        message = await asyncio.to_thread(read_message, self.path) if self.path else None
        if message is None and self._shared is not None:
            try:
                message = await self._shared.maintenance()
            except StoreUnreachable:
                return  # the last state seen stands
        if (message is None) != (self.message is None):
            if message is None:
                log.warning("maintenance mode off")
            else:
                log.warning("maintenance mode on: %s", message)
        self.message = message

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="maintenance")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_POLL)
            await self.refresh()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
