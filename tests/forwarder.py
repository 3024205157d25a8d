"""A TCP forwarder that can be cut: the network between a gateway and PostgreSQL.

Cutting it drops every connection and closes new ones at once, so the
store is unreachable without stopping the real server; restoring it keeps
the same port, as a network repaired would.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Forwarder"]


class Forwarder:
    """A TCP forwarder to PostgreSQL that can be cut (every connection dropped, new ones
    closed at once) and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut = False
        self.port = 0
        self.writes = 0  # client-to-server writes seen: the round trips of a protocol like PG's
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1") -> None:
        self._server = await asyncio.start_server(self._serve, host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if dst is up_writer:
                        self.writes += 1
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def drop(self) -> None:
        self.cut = True
        for w in list(self._writers):
            w.transport.abort()

    def restore(self) -> None:
        self.cut = False

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
