"""Several worker processes on one port, for a server with more than one core.

The master process only supervises: it starts N workers (each a full
gateway, binding the LC2 port with SO_REUSEPORT so the kernel spreads
connections, and its admin listener on ``admin.port + index``), forwards
SIGHUP and SIGTERM to them, restarts one that dies, and speaks to systemd:
READY once every worker is listening, watchdog pings only while every
worker's event loop reports in.  What must be right across workers is kept
where all of them see it: the audit store, the quota counters and the
failed-sign-in counts are SQLite files shared through SQLite's own locking;
each worker's metrics are exact for that worker, and Prometheus sums the N
admin endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from gateway.sdnotify import notify, watchdog_interval

__all__ = ["run_workers"]

log = logging.getLogger("lc2_gateway.workers")
_BEAT = 1.0


def _worker_main(config: str, index: int, port: int | None, conn: Connection) -> None:
    import uvloop

    from gateway.cli import apply_overrides
    from gateway.config.build import load_settings
    from gateway.heap import settle
    from gateway.logs import setup_logging
    from gateway.server import serve

    settings = apply_overrides(load_settings(Path(config)), port)
    listener = setup_logging(settings.logging.level)

    async def main() -> None:
        async def beats() -> None:
            while True:
                conn.send("beat")
                await asyncio.sleep(_BEAT)

        def ready() -> None:
            settle()
            conn.send("ready")

        task = asyncio.create_task(beats())
        try:
            await serve(settings, worker=index, on_ready=ready)
        finally:
            task.cancel()

    try:
        uvloop.run(main())
    finally:
        listener.stop()


class _Worker:
    def __init__(self, index: int, proc: BaseProcess, conn: Connection) -> None:
        self.index = index
        self.proc = proc
        self.conn = conn
        self.ready = False
        self.last_beat = time.monotonic()


def run_workers(config: Path, count: int, port: int | None, shutdown_timeout: float) -> int:
    ctx = multiprocessing.get_context("spawn")  # no event loop or pool state copied by fork
    stopping = False
    reload_requested = False

    def start(index: int) -> _Worker:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker_main,
            args=(str(config), index, port, child),
            name=f"lc2-gateway-worker-{index}",
            daemon=False,
        )
        proc.start()
        child.close()
        return _Worker(index, proc, parent)

    def on_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def on_hup(*_: object) -> None:
        nonlocal reload_requested
        reload_requested = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    workers = {i: start(i) for i in range(count)}
    announced = False
    interval = watchdog_interval()
    last_ping = 0.0
    while not stopping:
        conns = [w.conn for w in workers.values()]
        sentinels = [w.proc.sentinel for w in workers.values()]
        for ready in wait([*conns, *sentinels], timeout=0.5):
            for w in list(workers.values()):
                if ready is w.conn:
                    try:
                        msg = w.conn.recv()
                    except EOFError:
                        continue
                    w.last_beat = time.monotonic()
                    w.ready = w.ready or msg == "ready"
                elif ready == w.proc.sentinel and not stopping:
                    log.error(
                        "worker %d exited (code %s); starting it again", w.index, w.proc.exitcode
                    )
                    w.conn.close()
                    time.sleep(1.0)  # a worker that dies at once must not spin the master
                    workers[w.index] = start(w.index)
        if reload_requested:
            reload_requested = False
            for w in workers.values():
                if w.proc.pid is not None:
                    os.kill(w.proc.pid, signal.SIGHUP)
        if not announced and all(w.ready for w in workers.values()):
            announced = True
            notify("READY=1", f"STATUS={count} workers serving")
        now = time.monotonic()
        alive = all(now - w.last_beat < 3 * _BEAT for w in workers.values())
        if interval is not None and alive and now - last_ping >= interval:
            notify("WATCHDOG=1")
            last_ping = now

    notify("STOPPING=1", "STATUS=draining calls")
    for w in workers.values():
        if w.proc.is_alive() and w.proc.pid is not None:
            os.kill(w.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + shutdown_timeout + 10
    code = 0
    for w in workers.values():
        w.proc.join(max(0.1, deadline - time.monotonic()))
        if w.proc.is_alive():
            log.error("worker %d did not stop in time; killing it", w.index)
            w.proc.kill()
            w.proc.join()
            code = 1
    return code
