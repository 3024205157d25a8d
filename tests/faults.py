"""Fault injection for tests: a private PostgreSQL cluster and a misbehaving TCP port.

:class:`PrivatePostgres` is a throw-away cluster (``initdb`` in a temporary
directory, a random loopback port) that a test may stop, start and restart
at will without touching the shared server other tests use.  As root the
PostgreSQL binaries run as the ``postgres`` user, since the server refuses
to run as root.

:class:`FaultPort` is a loopback TCP port that stands where a backend's
address is configured and does one of four things:

``forward``  relays bytes to the real server (the backend is healthy)
``hang``     accepts connections and never answers; connections that were
             relaying stop relaying, so calls on pooled connections hang too
``garbage``  answers every connection with random bytes
``refuse``   nothing listens: connecting is refused; open connections are reset
``slow``     relays, but holds every chunk of bytes ``delay`` seconds first (an
             overloaded server or link); open connections slow down too

Switching back to ``forward`` resets every connection made or frozen during
the fault, as a restarted server would, and relays again.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from tests.support import free_port

# free_port is re-exported for bench/resilience.py
__all__ = ["FaultPort", "Mode", "PrivatePostgres", "free_port", "refused_port"]

Mode = Literal["forward", "hang", "garbage", "refuse", "slow"]


def refused_port() -> int:
    """A loopback port nothing listens on (connecting is refused)."""
    return free_port()


# --- a private PostgreSQL cluster -------------------------------------------------------


def _pg_bindir() -> Path:
    given = os.environ.get("LC2_TEST_PG_BINDIR")
    if given:
        return Path(given)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them or set "
        "LC2_TEST_PG_BINDIR"
    )


_PREFIX = "lc2gw-pg-"
_OWNER = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PrivatePostgres:
    """A PostgreSQL cluster of its own, on 127.0.0.1:<random port>, user postgres, trust.

    The test process that made it removes it at the end; a cluster whose test
    process was killed before it could is removed by the next one made.
    """

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self._reap_orphans()
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (self.root / _OWNER).write_text(str(os.getpid()), "ascii")
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:  # the server refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o700)

    def _reap_orphans(self) -> None:
        for owner in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*/{_OWNER}"):
            with contextlib.suppress(OSError, ValueError):
                if _alive(int(owner.read_text("ascii"))):
                    continue
                data = owner.parent / "data"
                if (data / "postmaster.pid").exists():
                    subprocess.run(
                        [*self._user(), str(self.bindir / "pg_ctl"), "-D", str(data), "-m",
                         "immediate", "-w", "stop"],
                        capture_output=True, timeout=60, check=False,
                    )  # fmt: skip
                shutil.rmtree(owner.parent, ignore_errors=True)

    @staticmethod
    def _user() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = [*self._user(), str(self.bindir / tool), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {out.stdout}{out.stderr}{log}")

    def create(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "30",
            "restart",
        )  # fmt: skip

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs and delete every file of the cluster."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- a TCP port that misbehaves on demand -------------------------------------------------


class _Conn:
    """One client connection into the fault port and, when relaying, its upstream."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.frozen = False  # a hung server: bytes are read and dropped, nothing answers
        self.tasks: set[asyncio.Task[None]] = set()

    def abort(self) -> None:
        for w in (self.client, self.upstream):
            if w is not None:
                w.transport.abort()
        for t in self.tasks:
            t.cancel()


class FaultPort:
    """A loopback port in front of ``target``; see the module docstring for the modes."""

    def __init__(
        self, target_host: str, target_port: int, *, seed: int = 5, delay: float = 2.0
    ) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode: Mode = "forward"
        self.delay = delay  # per chunk, in "slow" mode
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._random = random.Random(seed)

    async def start(self, mode: Mode = "forward") -> FaultPort:
        self.mode = mode
        if mode != "refuse":
            await self._listen()
        elif self.port == 0:
            self.port = free_port()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            self._reset_all()  # before wait_closed, which waits for connections on 3.12+
            await server.wait_closed()

    def _reset_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()

    async def set_mode(self, mode: Mode) -> None:
        old, self.mode = self.mode, mode
        if mode == old:
            return
        if mode == "refuse":
            await self._unlisten()
            return
        if mode == "hang":
            for conn in self._conns:
                conn.frozen = True
        elif mode == "slow" and old == "forward":
            pass  # the same server, slower: its sessions go on
        else:
            self._reset_all()  # the server "behind" the port changed: old sessions are gone
        if self._server is None:
            await self._listen()

    async def close(self) -> None:
        await self._unlisten()
        self._reset_all()

    def send_to_clients(self, data: bytes) -> int:
        """Write ``data`` to every relayed connection as if the server had sent it."""
        conns = [c for c in self._conns if c.upstream is not None and not c.frozen]
        for conn in conns:
            conn.client.write(data)
        return len(conns)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = _Conn(writer)
        self._conns.add(conn)
        try:
            if self.mode in ("forward", "slow"):
                await self._relay(conn, reader)
            elif self.mode == "garbage":
                await self._garbage(conn, reader)
            else:  # hang: read and drop whatever comes, never answer
                conn.frozen = True
                while await reader.read(65536):
                    pass
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # reset by the test or by the peer: the connection simply ends
        finally:
            self._conns.discard(conn)
            writer.transport.abort()

    async def _garbage(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        conn.client.write(self._random.randbytes(512))
        while await reader.read(65536):
            conn.client.write(self._random.randbytes(512))
            await conn.client.drain()

    async def _relay(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        conn.upstream = up_writer

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if conn.frozen:
                        continue  # a hung server: swallowed, never answered
                    if self.mode == "slow":
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
            if not conn.frozen:
                dst.transport.abort()

        tasks = [
            asyncio.create_task(pump(reader, up_writer)),
            asyncio.create_task(pump(up_reader, conn.client)),
        ]
        conn.tasks.update(tasks)
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            up_writer.transport.abort()
