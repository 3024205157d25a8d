"""The shared PostgreSQL audit store: several instances, one verifiable trail, tamper-evident."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.app import build_app, build_runtime
from gateway.audit import AuditWriter, keys
from gateway.errors import AuditUnavailable
from tests.audit_support import (
    TAMPERING,
    PgRun,
    call,
    cli,
    commit_past_two_timeouts,
    fill_store,
    pid_for,
    settings,
    tamper,
    write_calls,
    write_config,
)
from tests.conftest import PgServer
from tests.support import PEOPLE, MakeClient, free_port, lc2_headers


async def acli(*argv: str) -> tuple[int, str, str]:
    """The command line from an async test: it runs its own event loop, so in a thread."""
    return await asyncio.to_thread(cli, *argv)


def _schema() -> str:
    return f"audit_{uuid.uuid4().hex[:10]}"


def _pg_config(tmp_path: Path, pg: PgServer, schema: str, **extra: Any) -> Path:
    return write_config(
        tmp_path,
        store="postgresql",
        postgresql={"dsn": pg.dsn, "schema": schema},
        seal_interval=3600,
        **extra,
    )


def _pub(path: Path, seed_file: Path) -> Path:
    path.write_text(keys.public_pem(keys.load_public(seed_file)), encoding="ascii")
    return path


async def test_instances_and_their_workers_write_one_verifiable_trail(
    tmp_path: Path, pg_server: PgServer
) -> None:
    schema = _schema()
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    # each instance has its own seal key; each trusts the other's public key
    a_cfg = _pg_config(a_dir, pg_server, schema, instance="gw-a")
    b_cfg = _pg_config(b_dir, pg_server, schema, instance="gw-b")
    sa, sb = settings(a_cfg), settings(b_cfg)
    assert sa.audit.seal_key_path and sb.audit.seal_key_path
    shared_key = (a_dir / "audit.key").read_text()
    (b_dir / "audit.key").write_text(shared_key)  # one citizen-ID key for the whole trail
    a_pub = _pub(tmp_path / "a.pub", sa.audit.seal_key_path)
    b_pub = _pub(tmp_path / "b.pub", sb.audit.seal_key_path)
    a_cfg = _pg_config(a_dir, pg_server, schema, instance="gw-a", trusted_keys=[str(b_pub)])
    b_cfg = _pg_config(b_dir, pg_server, schema, instance="gw-b", trusted_keys=[str(a_pub)])
    sa, sb = settings(a_cfg), settings(b_cfg)
    # instance a runs two worker processes (two writers, one chain), instance b one
    writers = [
        AuditWriter(sa.audit, sa.services),
        AuditWriter(sa.audit, sa.services),
        AuditWriter(sb.audit, sb.services),
    ]
    for w in writers:
        await w.start()
    base = time.time() - 3 * 86400
    await asyncio.gather(
        *(
            write_calls(w, [call(base + i * 60, pid=pid_for(i)) for i in range(150)], chunk=20)
            for w in writers
        )
    )
    for w in writers:
        await w.close()
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        rows = await conn.fetch(
            f'SELECT chain, array_agg(seq ORDER BY seq) AS s FROM "{schema}".audit_log '
            "GROUP BY chain ORDER BY chain"
        )
    finally:
        await conn.close()
    assert [(r["chain"], list(r["s"])) for r in rows] == [
        ("gw-a", list(range(1, 301))),
        ("gw-b", list(range(1, 151))),
    ]
    assert (await acli("audit", "seal", "-c", str(a_cfg), "--chain", "gw-a", "--include-open"))[
        0
    ] == 0
    assert (await acli("audit", "seal", "-c", str(b_cfg), "--chain", "gw-b", "--include-open"))[
        0
    ] == 0
    code, out, _ = await acli("audit", "verify", "-c", str(a_cfg))
    assert code == 0, out
    assert "chain gw-a: 300 records" in out and "chain gw-b: 150 records" in out
    # without the other instance's public key its seals prove nothing
    alone = _pg_config(tmp_path, pg_server, schema, instance="gw-a")
    (tmp_path / "audit.key").write_text(shared_key)
    (tmp_path / "audit-seal.key").write_bytes((a_dir / "audit-seal.key").read_bytes())
    code, out, _ = await acli("audit", "verify", "-c", str(alone), "--json")
    assert code == 1
    kinds = {(f["chain"], f["kind"]) for f in json.loads(out)["findings"]}
    assert kinds == {("gw-b", "unknown-key")}


@pytest.mark.parametrize("kind", TAMPERING)
def test_tampering_with_postgresql_is_caught_and_located(
    tmp_path: Path, pg_server: PgServer, kind: str
) -> None:
    schema = _schema()
    config = _pg_config(tmp_path, pg_server, schema)
    asyncio.run(fill_store(config))
    assert cli("audit", "verify", "-c", str(config))[0] == 0
    expect_kind, segment, text = tamper(kind, PgRun(pg_server.dsn, schema))
    code, out, _ = cli("audit", "verify", "-c", str(config), "--json")
    assert code == 1
    hits = [
        f
        for f in json.loads(out)["findings"]
        if f["kind"] == expect_kind and (segment is None or f["segment"] == segment)
    ]
    assert hits and any(
        text in f"{f['message']} seq {f['seq']} request {f['request_id']}" for f in hits
    ), hits


async def test_the_gateway_commits_to_postgresql(
    tmp_path: Path, pg_server: PgServer, aiohttp_client: MakeClient
) -> None:
    schema = _schema()
    s = settings(_pg_config(tmp_path, pg_server, schema))
    rt = build_runtime(s)
    client = await aiohttp_client(build_app(rt))
    resp = await client.get(
        "/api/v1/fisher", params={"personalId": PEOPLE[0]["pid"]}, headers=lc2_headers()
    )
    assert resp.status == 200
    rid = resp.headers["X-Request-Id"]
    health = await (await client.get("/health")).json()
    assert health["audit"]["status"] == "up"
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        row = await conn.fetchrow(
            f'SELECT chain, seq, status, subject_hint FROM "{schema}".audit_log '
            "WHERE request_id = $1",
            rid,
        )
    finally:
        await conn.close()
    assert row is not None and (row["chain"], row["seq"], row["status"]) == ("gw1", 1, 200)


@contextlib.asynccontextmanager
async def _proxy(port: int, target: int = 5432) -> AsyncIterator[None]:
    """A TCP relay to the test PostgreSQL: stopping it is the database going away."""
    open_writers: list[asyncio.StreamWriter] = []

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", target)
        open_writers.extend([w, uw])
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()
        for w in open_writers:
            w.close()
        await server.wait_closed()


async def test_the_writer_waits_for_the_database_and_recovers_by_itself(
    tmp_path: Path, pg_server: PgServer
) -> None:
    port = free_port()
    dsn = re.sub(r"@[^/]+/", f"@127.0.0.1:{port}/", pg_server.dsn)
    config = write_config(
        tmp_path,
        store="postgresql",
        postgresql={"dsn": dsn, "schema": _schema(), "connect_timeout": 1, "command_timeout": 2},
        retry_interval=0.1,
        commit_timeout=3,
        seal_interval=3600,
    )
    s = settings(config)
    w = AuditWriter(s.audit, s.services)
    await w.start()  # the database is not there yet: start anyway, refusing calls
    assert not w.healthy and w.last_error
    with pytest.raises(AuditUnavailable):
        await w.commit(call(time.time()))
    async with _proxy(port):
        deadline = time.monotonic() + 10
        while not w.healthy:
            assert time.monotonic() < deadline, w.last_error
            await asyncio.sleep(0.05)
        await w.commit(call(time.time(), request_id="first"))
    with pytest.raises(AuditUnavailable):  # the database went away again
        await w.commit(call(time.time(), request_id="refused"))
    assert not w.healthy
    async with _proxy(port):
        deadline = time.monotonic() + 10
        while not w.healthy:
            assert time.monotonic() < deadline, w.last_error
            await asyncio.sleep(0.05)
        await w.commit(call(time.time(), request_id="second"))
        await w.close()
        assert (await acli("audit", "seal", "-c", str(config), "--include-open"))[0] == 0
        code, out, _ = await acli(
            "audit", "search", "-c", str(config), "--format", "jsonl", "--from", "2020-01-01"
        )
        assert code == 0
        assert [json.loads(x)["request_id"] for x in out.splitlines()] == ["first", "second"]
        assert (await acli("audit", "verify", "-c", str(config)))[0] == 0


async def test_concurrent_writers_and_sealers_agree_on_postgresql(
    tmp_path: Path, pg_server: PgServer
) -> None:
    config = write_config(
        tmp_path,
        store="postgresql",
        postgresql={"dsn": pg_server.dsn, "schema": _schema()},
        seal_interval=0.02,
        seal_grace=0,
    )
    s = settings(config)
    writers = [AuditWriter(s.audit, s.services) for _ in range(3)]
    for w in writers:
        await w.start()
    base = time.time() - 5 * 86400
    await asyncio.gather(
        *(
            write_calls(w, [call(base + i * 1200, pid=pid_for(i)) for i in range(300)], chunk=5)
            for w in writers
        )
    )
    for w in writers:
        await w.close()
    assert [w.seal.error for w in writers] == [None, None, None]
    assert (await acli("audit", "seal", "-c", str(config), "--include-open"))[0] == 0
    code, out, _ = await acli("audit", "verify", "-c", str(config))
    assert code == 0, out


async def test_a_commit_that_outlives_its_timeout_is_not_recorded_as_served_on_postgresql(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Told 503, recorded 200: never. The transaction that overran is rolled back."""
    import gateway.audit.store_postgres as store_postgres

    schema = _schema()
    config = _pg_config(tmp_path, pg_server, schema, commit_timeout=0.3)
    s = settings(config)
    w = AuditWriter(s.audit, s.services)
    await w.start()
    await commit_past_two_timeouts(w, store_postgres, commit_timeout=0.3)
    run = PgRun(pg_server.dsn, schema)
    rows = await asyncio.to_thread(run, "SELECT request_id, status FROM audit_log ORDER BY seq", ())
    assert ("overran", 200) not in rows and rows[-1] == ("after", 200), rows
