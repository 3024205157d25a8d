"""What the shared lock-out counts cost a sign-in that is not yet remembered.

A password attempt visits the counts twice: a place taken before the hash,
given back (or counted as a failure) after it.  This times those two
transactions on the SQLite store, alone, over ``--attempts`` attempts from
200 addresses, half of them failing, with limits high enough that nothing
locks.  A call whose credentials were already verified from its address
visits the store not at all, so LC2's steady traffic is not measured here.

    python bench/lockout_cost.py [--attempts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config.models import AuthFailuresConfig
from gateway.security.lockout import Lockouts, SqliteCounters


async def measure(attempts: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteCounters(Path(tmp) / "quota.sqlite")
        await store.open()
        try:
            locks = Lockouts(store, AuthFailuresConfig(per_address=10**9, per_username=10**9))
            times = []
            for i in range(attempts):
                t0 = time.perf_counter()
                place = await locks.reserve(f"10.0.{i % 200}.1", "Linkage Service", exempt=False)
                assert not isinstance(place, float)
                await locks.settle(place, failed=i % 2 == 0, remember=False)
                times.append(time.perf_counter() - t0)
        finally:
            await store.close()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=2000)
    args = parser.parse_args()
    times = asyncio.run(measure(args.attempts))
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"reserve + settle, n={len(times)}: median {statistics.median(times) * 1e3:.3f} ms, "
        f"p99 {p99 * 1e3:.3f} ms, max {times[-1] * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
