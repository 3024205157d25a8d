"""The listening socket: size limits, a request-head deadline, malformed requests.

aiohttp's HTTP parser enforces the request-line, header-size and header-count
limits (``max_line_size``, ``max_field_size``, ``max_headers``), but it has
no deadline for receiving a request head.  Its keep-alive timer closes a
connection that stays idle, yet how that timer treats a connection that is
*not* idle (a client sending one header byte a second: slowloris) differs
between aiohttp versions.  So each connection here carries its own
deadline, independent of aiohttp's internals: from the first byte of a
request head (or from the moment the connection opens) the whole head must
arrive within ``header_timeout`` seconds, or the connection is closed.  The
deadline is disarmed when the blank line ending the head is seen, so a slow
backend call never trips it, and an idle kept-alive connection is left to
aiohttp's ``keepalive_timeout``.  Watching for ``CRLF CRLF`` costs one
``bytes.find`` per chunk received.

A request the parser refuses (malformed, or over a limit) is answered here
with the gateway's JSON error envelope, code 108, security headers and no
echo of what was sent: aiohttp's own answer would quote the offending bytes
(a URL with a citizen ID in it, say) back to the client and into the log.
Both kinds of refusal are counted in ``lc2_gateway_connections_rejected_total``.

Open connections are capped per listener, in total and per peer address
(:class:`ConnectionCap`): one over either cap is closed the moment it is
accepted, before a byte is read, and counted with reason ``connection_limit``
or ``address_limit``.  An idle kept-alive connection costs memory until
``keepalive_timeout``; the cap bounds what a client can hold open.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest
from prometheus_client import CollectorRegistry, Counter

from gateway.errors import GatewayError, InternalError
from gateway.ids import new_request_id
from gateway.security.errors import MalformedRequest

__all__ = ["ConnectionCap", "ListenerSite", "RejectCounter", "handler_args"]

log = logging.getLogger("lc2_gateway.listener")

_HEAD_END = b"\r\n\r\n"

Render = Callable[[GatewayError, str], web.Response]


class RejectCounter:
    """``lc2_gateway_connections_rejected_total{reason}``: why a connection or request was cut."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "lc2_gateway_connections_rejected",
            "Connections closed or requests refused before reaching the gateway's handlers",
            ["reason"],
            registry=registry,
        )
        for reason in (
            "header_timeout",
            "malformed",
            "internal",
            "connection_limit",
            "address_limit",
        ):
            self._counter.labels(reason)

    def __call__(self, reason: str) -> None:
        self._counter.labels(reason).inc()


class ConnectionCap:
    """Open connections of one listener, in total and per peer address."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total, self.per_address = total, per_address
        self.open = 0
        self._by_address: dict[str, int] = {}

    def take(self, address: str) -> str | None:
        """Count a new connection in, or say why it is refused."""
        if self.open >= self.total:
            return "connection_limit"
        held = self._by_address.get(address, 0)
        if held >= self.per_address:
            return "address_limit"
        self.open += 1
        self._by_address[address] = held + 1
        return None

    def give_back(self, address: str) -> None:
        self.open -= 1
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]


def handler_args(
    *, max_line_size: int, max_field_size: int, max_headers: int, keepalive_timeout: float
) -> dict[str, Any]:
    """Keyword arguments for aiohttp's connection handler (AppRunner passes them through)."""
    return {
        "max_line_size": max_line_size,
        "max_field_size": max_field_size,
        "max_headers": max_headers,
        "keepalive_timeout": keepalive_timeout,
        # no call has a body; one that was sent is never read, so close instead of draining it
        "lingering_time": 0,
        "access_log": None,  # calls are logged by the gateway's access log, with no values
    }


class _Connection(web.RequestHandler):
    __slots__ = (
        "_cap",
        "_head_deadline",
        "_head_tail",
        "_head_timer",
        "_on_reject",
        "_peer",
        "_render",
    )

    def __init__(
        self,
        manager: web.Server,
        *,
        head_deadline: float,
        render: Render,
        on_reject: Callable[[str], None],
        cap: ConnectionCap | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._cap = cap
        self._peer: str | None = None  # set while this connection counts against the cap
        self._head_deadline = head_deadline
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_tail = b""
        self._render = render
        self._on_reject = on_reject

    # -- the request-head deadline ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._cap is not None:
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if peer else ""
            refused = self._cap.take(address)
            if refused is not None:
                # closed before a byte is read; aiohttp never learns of it
                self._on_reject(refused)
                getattr(transport, "abort", transport.close)()  # a reset, not a goodbye
                return
            self._peer = address
        super().connection_made(transport)
        self._arm()  # a connection that sends nothing at all is dropped on time too

    def data_received(self, data: bytes) -> None:
        if data:
            seen = self._head_tail + data if self._head_tail else data
            end = seen.rfind(_HEAD_END)
            if end >= 0:
                rest = len(seen) - end - len(_HEAD_END)
                self._disarm()
                if rest:  # a pipelined next request has begun
                    self._arm()
                self._head_tail = seen[-3:] if rest >= 3 else seen[len(seen) - rest :]
            else:
                if self._head_timer is None:
                    self._arm()
                self._head_tail = seen[-3:]
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._cap is not None:
            if self._peer is None:
                return  # refused at accept: aiohttp's side was never set up
            self._cap.give_back(self._peer)
            self._peer = None
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._head_deadline, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        self._on_reject("header_timeout")
        peer = self.transport.get_extra_info("peername") if self.transport else None
        log.info(
            "request head not received within %gs: connection closed",
            self._head_deadline,
            extra={"fields": {"peer": str(peer[0]) if peer else None}},
        )
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    # -- requests the parser refused, and exceptions nothing else caught ---------------

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; closing the connection")
        request_id = new_request_id()
        err: GatewayError
        if status >= 500:
            self._on_reject("internal")
            log.error("unhandled error (request %s)", request_id, exc_info=exc)
            err = InternalError()
        else:
            self._on_reject("malformed")
            # the parser's message quotes the request's own bytes: the type is enough here
            log.debug("malformed request refused: %s", type(exc).__name__ if exc else status)
            err = MalformedRequest()
        response = self._render(err, request_id)
        response.force_close()
        return response


class ListenerSite(web.BaseSite):
    """A TCP (or TLS) site whose connections carry the limits and deadline above."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        handler_kwargs: Mapping[str, Any],
        header_timeout: float,
        render: Render,
        on_reject: Callable[[str], None],
        ssl_context: ssl.SSLContext | None = None,
        reuse_address: bool = True,
        reuse_port: bool = False,
        backlog: int = 128,
        cap: ConnectionCap | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self.cap = cap
        self._host, self._port = host, port
        self._reuse_address, self._reuse_port = reuse_address, reuse_port
        self._handler_kwargs = dict(handler_kwargs)
        self._header_timeout = header_timeout
        self._render = render
        self._on_reject = on_reject
        self.bound_port: int | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.bound_port or self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def connection() -> web.RequestHandler:
            return _Connection(
                server,
                loop=loop,
                head_deadline=self._header_timeout,
                render=self._render,
                on_reject=self._on_reject,
                cap=self.cap,
                **self._handler_kwargs,
            )

        connection()  # a wrong handler argument fails here, at start-up, not per connection
        self._server = await loop.create_server(
            connection,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._header_timeout if self._ssl_context else None,
        )
        sockets = self._server.sockets
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
