"""The fleet's throughput for 1, 2 and 3 gateways behind HAProxy, as a ratio to one.

Builds the fleet of tests/test_fleet.py (each gateway in its own network
namespace, HAProxy with deploy/haproxy/haproxy.cfg, the shared state and
audit stores on PostgreSQL) for each size in turn and runs wrk against
HAProxy for ``--seconds`` at ``--connections``.  Every call is a real
lookup with its quota decision and its audit record on PostgreSQL.  Needs
root (ip netns), haproxy and wrk.

On a machine with fewer cores than gateways the ratio shows what the
shared stores and the balancer cost, not what more servers add: every
gateway, HAProxy, PostgreSQL and wrk share the same cores.

    python bench/fleet.py [--sizes 1 2 3] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from tests.conftest import PG_DSN, PgServer
from tests.support import OFFICE, OFFICER, PEOPLE, basic
from tests.test_fleet import Fleet


async def _drop(fleet: Fleet) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        for schema in (fleet.audit_schema, fleet.state_schema):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run(size: int, seconds: int, connections: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(Path(tmp), PgServer(PG_DSN, PG_DSN.rpartition("/")[2]), quota=100_000_000)
        try:
            fleet.network(size)
            fleet.configs(size)
            for g in fleet.gateways:
                g.start()
            fleet.start_haproxy()
            url = f"{fleet.lb}/api/v1/fisher?personalId={PEOPLE[0]['pid']}"
            headers = {
                "Authorization": basic(),
                "X-Office-Request": OFFICE,
                "X-User-Request": OFFICER,
                "User-Agent": "Linkage Center 2/bench",
            }
            args = [f"-H{k}: {v}" for k, v in headers.items()]
            wrk = shutil.which("wrk") or "wrk"
            out = subprocess.run(
                [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", *args, url],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=True,
            ).stdout
        finally:
            fleet.close()
            asyncio.run(_drop(fleet))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  {size} gateway(s): {non2xx.group(1)} answers were not 200", file=sys.stderr)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m, out
    return float(m.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    rates = {n: run(n, args.seconds, args.connections) for n in args.sizes}
    one = rates.get(1) or next(iter(rates.values()))
    for n, rate in rates.items():
        print(f"{n} gateway(s): {rate:,.0f} calls/s, {rate / one:.2f} x one")


if __name__ == "__main__":
    main()
