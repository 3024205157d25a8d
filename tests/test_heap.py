"""The garbage collector as the serving process sets it (gateway/heap.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.heap import YOUNG, release_retired, settle
from tests.audit_support import serving_config
from tests.gateway_process import GatewayProcess
from tests.support import PEOPLE, SQLITE_QUERY, MakeClient, fisher_service, lc2_headers
from tests.test_faults import metric, parse_metrics
from tests.test_runtime import Q, config, start, write_config


@pytest.fixture
def heap() -> Iterator[None]:
    """This test process's collector as it was: settle() changes process-wide state."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _frozen(obj: object) -> bool:
    """gc.get_objects() walks the generations a collection walks, not the frozen objects."""
    assert gc.is_tracked(obj)
    return not any(o is obj for o in gc.get_objects())


def test_settle_freezes_what_start_up_built_and_raises_the_young_threshold(heap: None) -> None:
    built = {"a config": ["built at start-up"]}
    settle()
    later = {"a call's": ["objects"]}
    assert _frozen(built) and not _frozen(later)
    assert gc.get_threshold()[0] == YOUNG > 700


def test_release_retired_leaves_a_heap_it_did_not_settle_alone(heap: None) -> None:
    kept = {"an embedding process's": ["objects"]}
    release_retired()
    assert gc.get_freeze_count() == 0 and not _frozen(kept)


async def test_a_reload_lets_the_retired_config_go_and_keeps_the_new_one_frozen(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: Any, heap: None
) -> None:
    """Frozen at start-up with everything else, an old config held in a reference cycle
    (a SOAP client's, say) would never be collected: every reload would keep a whole
    config for good. And the new config is frozen in its turn."""
    cfg = config(tmp_path)
    rt, client, path = await start(tmp_path, aiohttp_client, cfg, monkeypatch)
    assert (await client.get("/api/v1/fisher", params=Q, headers=lc2_headers())).status == 200
    rt.current.cycle = rt.current  # type: ignore[attr-defined]  # gone only by collection
    settle()  # as the serving process does once ready
    old = weakref.ref(rt.current)
    old_router = weakref.ref(rt.current.router)

    cfg["services"]["farms"] = {**fisher_service("legacy", SQLITE_QUERY), "path": "farms"}
    write_config(path, cfg)
    ok, message = await rt.reload(path)
    assert ok, message
    for _ in range(200):  # the old generation retires once its calls are done: none here
        if not rt._retiring:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the retiring task's done callbacks
    assert old() is None and old_router() is None, "the retired config is still held"
    assert _frozen(rt.current.router)
    assert (await client.get("/api/v1/farms", params=Q, headers=lc2_headers())).status == 200


@pytest.mark.parametrize("workers", [1, 2])
def test_the_serving_process_collects_nothing_while_calls_come_and_go(
    tmp_path: Path, workers: int
) -> None:
    """``lc2-gateway serve`` (each worker of ``--workers 2`` too) settles its heap once
    ready: rounds of 32 calls at once, the load of a busy LC2 day, rise and fall with no
    collection (with Python's defaults: dozens, each walking every call in flight, and full
    ones walking everything start-up built)."""
    config, port, admin = serving_config(tmp_path, seal_interval=3600)
    url = f"http://127.0.0.1:{port}/api/v1/fisher"
    admins = [f"http://127.0.0.1:{admin + i}/metrics" for i in range(workers)]

    async def rounds() -> tuple[float, float, list[int]]:
        # new connections each round: the kernel spreads them over the workers
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> int:
                params = {"personalId": PEOPLE[i % len(PEOPLE)]["pid"]}
                async with session.get(url, params=params, headers=lc2_headers()) as resp:
                    await resp.read()
                    return resp.status

            async def young_collections() -> float:
                total = 0.0
                for metrics in admins:
                    async with session.get(metrics) as resp:
                        samples = parse_metrics(await resp.text())
                    total += metric(samples, "python_gc_collections_total", generation="0") or 0
                return total

            # warm: connections, caches and metric children made before counting
            statuses = list(await asyncio.gather(*(one(i) for i in range(32))))
            before = await young_collections()
            for _ in range(40):
                statuses += await asyncio.gather(*(one(i) for i in range(32)))
            return before, await young_collections(), statuses

    with GatewayProcess(config, admin, workers=workers):
        before, after, statuses = asyncio.run(rounds())
    assert set(statuses) == {200} and len(statuses) == 32 * 41
    assert after - before <= 4 * workers, f"{after - before:.0f} young-generation collections"
