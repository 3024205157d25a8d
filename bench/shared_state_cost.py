"""What the shared state store costs a call: one quota decision on PostgreSQL against SQLite.

Times ``QuotaStore.check`` (the only state the hot path touches once a
caller's sign-in is remembered) over ``--calls`` calls, one at a time, on
the SQLite file of one machine and on the shared PostgreSQL store, and
counts the PostgreSQL round trips through a TCP forwarder that sees every
write the gateway sends (asyncpg sends a prepared statement's bind, execute
and sync in one write, and waits for the answer: one write, one round trip).

    python bench/shared_state_cost.py [--calls 2000] [--dsn postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from gateway.audit.config import PgAuditSettings
from gateway.config.models import LimitsConfig, QuotaRule
from gateway.quota import QuotaStore
from gateway.sharedstate import SharedState
from tests.forwarder import Forwarder

RULES = (QuotaRule(name="officer-daily", scope="officer", per="day", limit=100_000_000),)


async def _time(store: QuotaStore, calls: int) -> list[float]:
    subjects = {"officer": "3100500123456", "office": "00023", "consumer": "lc2"}
    await store.check("fisher", False, subjects)  # the statement is prepared once
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await store.check("fisher", False, subjects)
        times.append(time.perf_counter() - t0)
    return sorted(times)


async def measure(calls: int, dsn: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LimitsConfig(quotas=list(RULES), store=Path(tmp) / "quota.sqlite")
        sqlite = QuotaStore(cfg)
        await sqlite.open()
        try:
            report("SQLite file", await _time(sqlite, calls))
        finally:
            await sqlite.close()

        schema = f"bench_state_{uuid.uuid4().hex[:8]}"  # both stores count in it, then it goes
        direct = SharedState(PgAuditSettings(dsn, None, schema, 4, 5.0, 5.0), fail_closed=True)
        await direct.open()
        try:
            await _time(QuotaStore(cfg, direct), 10)  # warm: pool, prepared statement
            report("PostgreSQL", await _time(QuotaStore(cfg, direct), calls))
        finally:
            await direct.close()

        parts = urlsplit(dsn)
        fwd = Forwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
        await fwd.start()
        via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{fwd.port}").geturl()
        shared = SharedState(PgAuditSettings(via, None, schema, 4, 5.0, 5.0), fail_closed=True)
        pg = QuotaStore(cfg, shared)
        await shared.open()
        try:
            await _time(pg, 10)  # warm: pool, prepared statement
            before = fwd.writes
            times = await _time(pg, calls)
            trips = (fwd.writes - before) / (calls + 1)
            report(f"PostgreSQL via a forwarder, {trips:.2f} round trips a call", times)
        finally:
            await shared.close()
            await fwd.close()
            conn = await asyncpg.connect(dsn)
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await conn.close()


def report(what: str, times: list[float]) -> None:
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"{what}: n={len(times)} median {statistics.median(times) * 1e6:.0f} µs, "
        f"p99 {p99 * 1e6:.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(measure(args.calls, args.dsn))


if __name__ == "__main__":
    main()
