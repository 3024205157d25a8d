"""Running the gateway: uvloop, two listeners, signals, systemd integration.

SIGTERM/SIGINT  stop accepting, let running calls finish (up to
                ``shutdown_timeout``), flush the audit, close the pools
SIGHUP          reload the config file; a broken one is refused and logged
systemd         READY=1 once listening, STOPPING=1 on the way out, and a
                watchdog ping from the event loop itself, so a blocked loop
                is restarted by systemd

Both listeners are :class:`~gateway.security.listener.ListenerSite`: the
request size limits and the request-head deadline of ``listen:`` apply to
each connection, and the LC2 listener speaks TLS (mutual TLS with a client
CA) when ``listen.tls`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import uvloop
from aiohttp import web

from gateway.app import build_admin_app, build_app
from gateway.config.runtime import Settings
from gateway.errors import GatewayError
from gateway.heap import settle
from gateway.respond import error_response
from gateway.runtime import Runtime
from gateway.sdnotify import notify, watchdog_interval
from gateway.security.headers import SERVER_NAME, security_headers
from gateway.security.listener import ConnectionCap, ListenerSite, RejectCounter, handler_args
from gateway.security.redact import REDACTOR

__all__ = ["ListenError", "run", "serve"]

log = logging.getLogger("lc2_gateway.server")


class ListenError(Exception):
    """A listener that can not be opened: the port is taken or the user may not bind it."""


async def _start(site: ListenerSite, what: str, host: str, port: int) -> None:
    try:
        await site.start()
    except OSError as exc:
        # the event loop's own text repeats the address: the system's words are enough
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (another process listens there: choose another port or stop it)"
        elif exc.errno == errno.EACCES:
            hint = " (ports below 1024 need CAP_NET_BIND_SERVICE)"
        raise ListenError(
            f"cannot open the {what} listener on {host}:{port}: {reason}{hint}"
        ) from None


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def _renderer(rt: Runtime, *, tls: bool) -> Callable[[GatewayError, str], web.Response]:
    """How a listener answers a request that never reached an application."""
    extra = {**security_headers(tls=tls), "Server": SERVER_NAME}

    def render(err: GatewayError, request_id: str) -> web.Response:
        lc2 = rt.settings.lc2
        return error_response(lc2, err, request_id, {lc2.headers.request_id: request_id, **extra})

    return render


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    worker: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until ``stop`` is set or a stop signal arrives.

    ``worker`` is this process's index when several share the port
    (SO_REUSEPORT); each worker's admin listener is on ``admin.port + worker``.
    """
    REDACTOR.add_secrets(settings.security.secrets)
    rt = Runtime(settings)
    app = build_app(rt)
    listen = settings.listen
    limits = handler_args(
        max_line_size=listen.max_line_size,
        max_field_size=listen.max_field_size,
        max_headers=listen.max_headers,
        keepalive_timeout=listen.keepalive_timeout,
    )
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout, **limits
    )
    rejected = RejectCounter(rt.metrics.registry)
    tls = settings.security.tls
    await runner.setup()  # runs cleanup_ctx: audit, pools, health monitor
    admin_runner: web.AppRunner | None = None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    pinger: asyncio.Task[None] | None = None
    try:
        site = ListenerSite(
            runner,
            listen.host,
            listen.port,
            handler_kwargs=limits,
            header_timeout=listen.header_timeout,
            render=_renderer(rt, tls=tls is not None),
            on_reject=rejected,
            ssl_context=tls,
            reuse_address=True,
            reuse_port=worker is not None,
            cap=ConnectionCap(listen.max_connections, listen.max_connections_per_address),
        )
        await _start(site, "LC2", listen.host, listen.port)
        if settings.admin.enabled:
            admin_runner = web.AppRunner(build_admin_app(rt), handle_signals=False, **limits)
            await admin_runner.setup()
            admin_port = settings.admin.port + (worker or 0)
            admin_site = ListenerSite(
                admin_runner,
                settings.admin.host,
                admin_port,
                handler_kwargs=limits,
                header_timeout=listen.header_timeout,
                render=_renderer(rt, tls=False),
                on_reject=rejected,
                cap=ConnectionCap(listen.max_connections, listen.max_connections_per_address),
            )
            await _start(admin_site, "admin", settings.admin.host, admin_port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(rt.reload(Path(rt.settings.source)))
        )
        log.info(
            "lc2-gateway ready",
            extra={
                "fields": {
                    "listen": site.name,
                    "admin": f"{settings.admin.host}:{settings.admin.port + (worker or 0)}"
                    if settings.admin.enabled
                    else None,
                    "worker": worker,
                    "services": sorted(settings.services),
                    "configVersion": settings.version,
                }
            },
        )
        if worker is None:
            notify("READY=1", f"STATUS=serving {len(settings.services)} services")
            interval = watchdog_interval()
            if interval is not None:
                pinger = asyncio.create_task(_watchdog(interval))
        if on_ready is not None:
            on_ready()
        await stop.wait()
        log.info("lc2-gateway stopping")
        if worker is None:
            notify("STOPPING=1", "STATUS=draining calls")
    finally:
        if pinger is not None:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        # stops accepting, waits for running calls, then audit flush and pool close;
        # the admin listener goes last so health stays readable while draining
        await runner.cleanup()
        if admin_runner is not None:
            await admin_runner.cleanup()
        log.info("lc2-gateway stopped")


def run(settings: Settings) -> None:
    uvloop.run(serve(settings, on_ready=settle))
