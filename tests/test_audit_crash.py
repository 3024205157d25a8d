"""`kill -9` under load: every answered call has its record, and the chain still verifies.

A real ``python -m gateway serve`` on a loopback port with the SQLite store;
a bounded client loop fires concurrent calls, each with its own request id;
the process is killed with SIGKILL while calls are in flight.  A record is
committed (fsync'ed, chain head moved, in one transaction) before its answer
is sent, so an answer received proves a record on disk; a batch torn by the
kill is rolled back by SQLite as a whole and leaves no trace in the chain.

The other way round, a kill can leave records of calls whose answers never
left the process (committed, then killed before the response was written):
exactly calls that were in flight at the kill, never more than were in flight.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import aiohttp

from tests.audit_support import Served, cli, serving_config, sql
from tests.support import NO_RECORD_PID, PEOPLE, lc2_headers

KILL_AFTER = 400  # answered calls before each kill
WORKERS = 24  # concurrent client loops


async def _load(
    port: int, answered: dict[str, int], stop: asyncio.Event, unanswered: set[str] | None = None
) -> int:
    """Fire calls until ``stop``; returns how many died in flight (their ids: ``unanswered``)."""
    url = f"http://127.0.0.1:{port}/api/v1/fisher"
    pids = [p["pid"] for p in PEOPLE] + [NO_RECORD_PID, "1234567890123"]  # the last is invalid
    in_flight_lost = 0

    async def loop(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal in_flight_lost
        i = 0
        while not stop.is_set():
            rid = f"k-{n}-{i}-{uuid.uuid4().hex[:8]}"
            i += 1
            headers = lc2_headers(**{"X-Request-Id": rid})
            try:
                async with session.get(
                    url, params={"personalId": pids[i % len(pids)]}, headers=headers
                ) as resp:
                    await resp.read()
                    answered[rid] = resp.status
            except (aiohttp.ClientError, OSError):
                in_flight_lost += 1
                if unanswered is not None:
                    unanswered.add(rid)
                return  # the gateway is gone

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(loop(n, session) for n in range(WORKERS)))
    return in_flight_lost


def _kill_under_load(config: Path, port: int, admin: int, unanswered: set[str]) -> dict[str, int]:
    gw = Served(config, admin)
    gw.wait_ready()
    answered: dict[str, int] = {}

    async def scenario() -> int:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(port, answered, stop, unanswered))
        deadline = time.monotonic() + 30
        while len(answered) < KILL_AFTER:
            assert time.monotonic() < deadline and not load.done(), gw.output()
            await asyncio.sleep(0.01)
        gw.proc.send_signal(signal.SIGKILL)  # mid-flight: the loops are still firing
        lost = await asyncio.wait_for(load, 15)
        stop.set()
        return lost

    lost = asyncio.run(scenario())
    assert gw.stop() == -signal.SIGKILL
    assert lost > 0, "no call was in flight at the kill"
    return answered


def test_sigkill_under_load_loses_no_answered_call(tmp_path: Path) -> None:
    config, port, admin = serving_config(tmp_path, seal_interval=3600)
    db = tmp_path / "audit.sqlite"
    answered: dict[str, int] = {}
    in_flight: set[str] = set()  # calls sent and never answered, across the kills
    for _ in range(3):  # three kills: each restart continues the chain the last one left
        answered.update(_kill_under_load(config, port, admin, in_flight))
        stored = {r[0] for r in sql(db, "SELECT request_id FROM audit_log")}
        missing = [rid for rid in answered if rid not in stored]
        assert not missing, f"{len(missing)} answered calls have no record: {missing[:5]}"
        # what a kill leaves: records of calls in flight at the kill, none of any other
        unsent = {rid for rid in stored if rid not in answered}
        print(f"after the kills so far: {len(in_flight)} calls in flight, {len(unsent)} recorded")
        assert unsent <= in_flight, sorted(unsent - in_flight)[:5]
        seqs = [r[0] for r in sql(db, "SELECT seq FROM audit_log ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        code, out, _ = cli("audit", "verify", "-c", str(config))
        assert code == 0, out
    assert {200, 400} <= set(answered.values())

    # a graceful run after the crashes
    gw = Served(config, admin)
    gw.wait_ready()
    after: dict[str, int] = {}

    async def a_few() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_load(port, after, stop))
        deadline = time.monotonic() + 30
        while len(after) < 50:
            assert time.monotonic() < deadline and not task.done(), gw.output()
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(a_few())
    assert gw.stop() == 0
    seqs = [r[0] for r in sql(db, "SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= len(answered) + len(after)
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 0, out
