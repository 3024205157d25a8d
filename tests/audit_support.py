"""Shared helpers of the audit tests (this module holds no tests).

Stores are real: SQLite files in ``tmp_path`` and schemas in the test
PostgreSQL database.  Records are the gateway's own ``CallRecord``s written
through the real ``AuditWriter``; the command line is the real ``main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import http.client
import io
import os
import re
import secrets
import socketserver
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import yaml

from gateway.audit import AuditWriter
from gateway.cli import main
from gateway.config.build import load_settings
from gateway.config.runtime import Settings
from gateway.observe import CallRecord
from tests.support import (
    OFFICE,
    OFFICER,
    PEOPLE,
    SQLITE_QUERY,
    base_config,
    fisher_service,
    free_port,
    lc2_headers,
    make_pid,
    make_sqlite_db,
    sqlite_backend,
)

__all__ = [
    "BKK",
    "DAYS",
    "MOUNT",
    "PER_DAY",
    "ROOT",
    "TAIL",
    "TAMPERING",
    "Calls",
    "PgRun",
    "Served",
    "SmtpServer",
    "at",
    "call",
    "cli",
    "commit_past_two_timeouts",
    "fill_disk",
    "fill_store",
    "pid_for",
    "running_smtp",
    "serving_config",
    "settings",
    "sql",
    "tamper",
    "write_calls",
    "write_config",
]

BKK = ZoneInfo("Asia/Bangkok")


def at(day: str, hhmm: str = "10:00", second: int = 0) -> float:
    """Unix time of a local Bangkok date and time."""
    d = dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=BKK, second=second)
    return d.timestamp()


def pid_for(n: int) -> str:
    """A valid citizen ID for counter ``n`` (class 3: registered before 1984)."""
    return make_pid(f"3{n:011d}")


def write_config(tmp_path: Path, *, top: dict[str, Any] | None = None, **audit: Any) -> Path:
    """A complete gateway config file whose audit block holds ``audit`` overrides.

    The HMAC key is a file (the command line reads it; nothing from the
    environment is needed) and relative paths are relative to the file.
    """
    key_file = tmp_path / "audit.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    services = {
        "fisher": fisher_service("legacy", SQLITE_QUERY),
        "vessel": fisher_service("legacy", SQLITE_QUERY, path="vessel"),
        "farm": fisher_service("legacy", SQLITE_QUERY, path="farm"),
    }
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, services)
    cfg["audit"] = {
        "path": str(tmp_path / "audit.sqlite"),
        "key_file": str(key_file),
        "instance": "gw1",
        **audit,
    }
    cfg["consumers"]["lc2"]["offices"] = ["00023", "00101", "00245"]
    cfg.update(top or {})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def settings(config: Path) -> Settings:
    return load_settings(config, create_key_file=True)


def call(
    ts: float,
    *,
    pid: str | None = None,
    officer: str | None = OFFICER,
    office: str | None = OFFICE,
    service: str = "fisher",
    status: int = 200,
    code: str = "000",
    sandbox: bool = False,
    consumer: str | None = "lc2",
    error: str | None = None,
    request_id: str | None = None,
) -> CallRecord:
    return CallRecord(
        request_id=request_id or uuid.uuid4().hex,
        started=ts,
        method="GET",
        path=f"/api/v1/{service}",
        client_ip="10.0.0.7",
        service=service,
        kind="sandbox" if sandbox else "data",
        sandbox=sandbox,
        consumer=consumer,
        office=office,
        officer=officer,
        user_agent="Linkage Center 2/1.0",
        params={} if pid is None else {"personalId": pid},
        status=status,
        code=code,
        rows=1 if status == 200 else 0,
        error=error,
        duration=0.0042,
        backend_duration=0.0021 if status == 200 else None,
    )


async def write_calls(writer: AuditWriter, calls: Iterable[CallRecord], chunk: int = 400) -> None:
    """Commit in time order, ``chunk`` calls in flight at once (group commit)."""
    batch: list[CallRecord] = []
    for c in calls:
        batch.append(c)
        if len(batch) >= chunk:
            await asyncio.gather(*(writer.commit(r) for r in batch))
            batch = []
    await asyncio.gather(*(writer.commit(r) for r in batch))


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``lc2-gateway`` in this process; returns exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def sql(path: Path, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        return [tuple(r) for r in db.execute(statement, tuple(params)).fetchall()]


# -- a sealed store, and every way of tampering with it ------------------------------------

DAYS = ("2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06")
PER_DAY = 10
TAIL = 5  # records of today: the open segment


async def fill_store(config: Path) -> None:
    """Four sealed daily segments of PER_DAY records (seq 1..40), then an open tail."""
    from dataclasses import replace

    s = settings(config)
    # no sealer while the past is written (it would seal a day before all of it is in)
    writer = AuditWriter(replace(s.audit, seal_seed=None), s.services)
    await writer.start()
    try:
        calls = [
            call(at(day, "09:00") + k * 420, pid=pid_for(i * 100 + k))
            for i, day in enumerate(DAYS)
            for k in range(PER_DAY)
        ]
        await write_calls(writer, calls, chunk=7)  # batches that straddle segments
        code, out, err = await asyncio.to_thread(cli, "audit", "seal", "-c", str(config))
        assert code == 0 and out.count("sealed chain") == len(DAYS), out + err
        now = dt.datetime.now(BKK).replace(hour=0, minute=1).timestamp()
        await write_calls(writer, [call(now + k, pid=pid_for(900 + k)) for k in range(TAIL)])
    finally:
        await writer.close()


Run = Any  # (sql with ? placeholders, params) -> rows; tables named audit_log, audit_seal


def tamper(kind: str, run: Run) -> tuple[str, str | None, str]:
    """Tamper with the store; returns (finding kind, segment, text the finding must hold)."""
    d2, d3 = DAYS[1], DAYS[2]
    if kind == "edit-field":
        run("UPDATE audit_log SET officer = ? WHERE seq = 15", ["3100000000001"])
        return "modified", d2, "seq 15"
    if kind == "delete-row":
        run("DELETE FROM audit_log WHERE seq = 15", [])
        return "deleted", d2, "between seq 14"
    if kind == "insert-row":
        from gateway.audit.chain import record_hash
        from gateway.audit.record import CONTENT_COLUMNS

        cols = ", ".join(f'"{c}"' for c in CONTENT_COLUMNS)
        content = list(run(f"SELECT {cols} FROM audit_log WHERE seq = 15", [])[0])
        content[1] = "forged-request"
        content[4] = "3100000000001"  # another officer, to pin the access on
        prev = run("SELECT row_hash FROM audit_log WHERE seq = 14", [])[0][0]
        # the attacker knows the (public) hashing rule, but not the seal key
        h = record_hash(prev, "gw1", d2, tuple(content))
        marks = ", ".join("?" * (len(content) + 5))
        run(
            f"INSERT INTO audit_log ({cols}, chain, seq, segment, prev_hash, row_hash) "
            f"VALUES ({marks})",
            [*content, "gw1", 1000, d2, prev, h],
        )
        return "inserted", d2, "forged-request"
    if kind == "swap-rows":
        from gateway.audit.record import CONTENT_COLUMNS

        names = repr_cols([*CONTENT_COLUMNS, "prev_hash", "row_hash"])
        a = run(f"SELECT {', '.join(names)} FROM audit_log WHERE seq = 15", [])[0]
        b = run(f"SELECT {', '.join(names)} FROM audit_log WHERE seq = 16", [])[0]
        sets = ", ".join(f"{c} = ?" for c in names)
        run(f"UPDATE audit_log SET {sets} WHERE seq = 15", [*b])
        run(f"UPDATE audit_log SET {sets} WHERE seq = 16", [*a])
        return "reordered", d2, "seq 15"
    if kind == "drop-segment":
        run("DELETE FROM audit_log WHERE segment = ?", [d2])
        run("DELETE FROM audit_seal WHERE segment = ?", [d2])
        return "missing-seal", d3, f"between segment {DAYS[0]}"
    if kind == "edit-seal":
        run('UPDATE audit_seal SET "count" = "count" - 1 WHERE segment = ?', [d2])
        return "altered-seal", d2, "signature does not verify"
    if kind == "delete-seal":
        run("DELETE FROM audit_seal WHERE segment = ?", [d2])
        return "missing-seal", d2, "seal was removed"
    if kind == "empty-segment":
        run("DELETE FROM audit_log WHERE segment = ?", [d2])
        return "missing-segment", d2, "seq 11..20"
    if kind == "truncate-tail":
        last = len(DAYS) * PER_DAY + TAIL
        run("DELETE FROM audit_log WHERE seq = ?", [last])
        return "deleted", None, f"seq {last}..{last} at the end of the chain"
    if kind == "rehash-row":
        from gateway.audit.chain import record_hash
        from gateway.audit.record import CONTENT_COLUMNS

        cols = ", ".join(f'"{c}"' for c in CONTENT_COLUMNS)
        content = list(run(f"SELECT {cols} FROM audit_log WHERE seq = 15", [])[0])
        content[3] = "00999"
        prev = run("SELECT prev_hash FROM audit_log WHERE seq = 15", [])[0][0]
        h = record_hash(prev, "gw1", d2, tuple(content))
        run("UPDATE audit_log SET office = ?, row_hash = ? WHERE seq = 15", ["00999", h])
        return "deleted", d2, "breaks between seq 15 and seq 16"
    raise ValueError(kind)


def repr_cols(cols: Sequence[str]) -> list[str]:
    return [f'"{c}"' for c in cols]


TAMPERING = (
    "edit-field",
    "delete-row",
    "insert-row",
    "swap-rows",
    "drop-segment",
    "edit-seal",
    "delete-seal",
    "empty-segment",
    "truncate-tail",
    "rehash-row",
)


# -- a full disk ---------------------------------------------------------------------------

# run a command with a 2 MiB tmpfs mounted on its first argument (inside `unshare --mount`)
MOUNT = ("sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"')


def fill_disk(directory: Path) -> Path:
    """Write until the filesystem says ENOSPC (unbuffered: nothing left to flush later)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return filler


# -- the gateway as a process ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def serving_config(tmp_path: Path, **audit: Any) -> tuple[Path, int, int]:
    """A config for `lc2-gateway serve` on loopback ports; returns it and the two ports."""
    port, admin = free_port(), free_port()
    top = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"enabled": True, "host": "127.0.0.1", "port": admin},
        "logging": {"level": "INFO"},
    }
    return write_config(tmp_path, top=top, **audit), port, admin


class Served:
    """``python -m gateway serve`` in its own process (optionally under a wrapper command)."""

    def __init__(self, config: Path, admin: int, prefix: Sequence[str] = ()) -> None:
        import subprocess
        import sys

        self.admin = admin
        self.log = (config.parent / f"gateway-{uuid.uuid4().hex[:6]}.log").open("w")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "gateway", "serve", "-c", str(config)],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 20) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gateway not ready: " + self.output())

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


@contextlib.contextmanager
def served_on_small_disk(tmp_path: Path, **audit: Any) -> Iterator[tuple[Served, int, Path]]:
    """A gateway whose audit store is on a 2 MiB tmpfs of its own mount namespace.

    Yields it, its data port, and the gateway's view of that tmpfs (where a test fills
    the disk); stops it at the end, expecting a clean exit.
    """
    import shutil

    unshare = shutil.which("unshare")
    assert unshare, "util-linux `unshare` is needed to mount a private tmpfs"
    mnt = tmp_path / "small"
    mnt.mkdir()
    config, port, admin = serving_config(
        tmp_path,
        **{
            "path": str(mnt / "audit.sqlite"),
            "seal_key_file": str(tmp_path / "seal.key"),
            "retry_interval": 0.2,
            "seal_interval": 3600,
            **audit,
        },
    )
    prefix = [unshare, "--mount", "--map-root-user", "--propagation", "private", *MOUNT, str(mnt)]
    served = Served(config, admin, prefix)
    try:
        served.wait_ready()
        store = Path(f"/proc/{served.proc.pid}/root{mnt}")
        assert (store / "audit.sqlite").exists(), "the store is not on the private tmpfs"
        yield served, port, store
    finally:
        with contextlib.suppress(ProcessLookupError):
            assert served.stop() == 0, served.output()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message: the local mail system in the report tests."""

    server: SmtpServer

    def handle(self) -> None:
        def reply(text: str) -> None:
            self.wfile.write(text.encode("ascii") + b"\r\n")

        reply("220 test ESMTP")
        data: list[bytes] | None = None
        for raw in self.rfile:
            line = raw.rstrip(b"\r\n")
            if data is not None:
                if line == b".":
                    self.server.messages.append(b"\r\n".join(data))
                    data = None
                    reply("250 queued")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                reply("250-test")
                reply("250 8BITMIME")
            elif verb == b"DATA":
                data = []
                reply("354 end with .")
            elif verb == b"QUIT":
                reply("221 bye")
                return
            else:
                reply("250 ok")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[bytes] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def running_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Calls:
    """Client threads calling a served gateway on keep-alive connections, without pause.

    Every answer is kept with its time (status 0: no answer); the threads stop at the
    end of the ``with`` block, or after ``limit`` seconds whatever happens.
    """

    def __init__(self, port: int, clients: int = 4, limit: float = 60.0) -> None:
        self.port = port
        self.answers: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        path = f"/api/v1/fisher?personalId={PEOPLE[0]['pid']}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while self.running():
            try:
                conn.request("GET", path, headers=lc2_headers())
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                status = 0
            with self._lock:
                self.answers.append((time.monotonic(), status))
        conn.close()

    def running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def since(self, t: float) -> list[int]:
        with self._lock:
            return [s for at, s in self.answers if at >= t]

    def __enter__(self) -> Calls:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


class PgRun:
    """Statements for the tamper helpers (``?`` placeholders), run on a PostgreSQL schema."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema

    def __call__(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        q = re.sub(r"\baudit_(log|seal)\b", rf'"{self.schema}".audit_\1', statement)
        n = iter(range(1, 100))
        q = re.sub(r"\?", lambda _: f"${next(n)}", q)

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.dsn)
            try:
                return [tuple(r) for r in await conn.fetch(q, *params)]
            finally:
                await conn.close()

        return asyncio.run(run())


async def commit_past_two_timeouts(
    writer: AuditWriter, store_module: Any, *, commit_timeout: float
) -> None:
    """Commit ``overran`` through a transaction slowed past two commit timeouts (it must
    be refused), then ``after`` normally; closes the writer.

    The slow part runs on the writer's thread, inside the store's transaction once the
    records are taken: ``link`` of ``store_module`` sleeps first.
    """
    from gateway.audit import chain
    from gateway.errors import AuditUnavailable

    def slow(*args: Any, **kw: Any) -> Any:
        time.sleep(commit_timeout * 2.5)
        return chain.link(*args, **kw)

    try:
        store_module.link = slow
        try:
            await writer.commit(call(time.time(), request_id="overran"))
        except AuditUnavailable:
            pass
        else:
            raise AssertionError("a commit past its timeout was answered as written")
    finally:
        store_module.link = chain.link
    await writer.commit(call(time.time(), request_id="after"))
    await writer.close()
