"""The two aiohttp applications: the LC2-facing one and the admin one.

LC2 routes are resolved by the current config generation's router (see
:mod:`gateway.router`), so a reload can change them; aiohttp's own router
only holds ``/health`` and one catch-all.  The admin application (metrics,
liveness, readiness, health, reload, ``/openapi.json``) belongs on a local
or management address, never on the LC2 network.

Before a call reaches the pipeline, the front door (:mod:`gateway.security.front`)
resolves the caller's address and applies the gateway-wide allow list; only
canonical paths are routed, and a data call with a body is refused.  Health
answers on the LC2 listener name a backend's trouble in a word, never with
the driver's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway.config.runtime import Service
from gateway.config.summary import summarise
from gateway.errors import GatewayError, Maintenance, MethodNotAllowed, NotFound
from gateway.request import authenticate
from gateway.respond import json_response
from gateway.runtime import Generation, Runtime, build_runtime
from gateway.security.admin import admin_guard, ensure_token, token_path
from gateway.security.errors import AddressNotAllowed, MalformedRequest
from gateway.security.front import Client, FrontDoor, canonical_path
from gateway.security.headers import with_security_headers
from gateway.status import status_routes

__all__ = ["RUNTIME", "build_admin_app", "build_app", "build_runtime", "gateway_health"]

RUNTIME = web.AppKey("runtime", Runtime)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ALLOWED = ("GET", "HEAD")


def gateway_health(rt: Runtime) -> tuple[int, dict[str, Any]]:
    gen = rt.current
    health = gen.health.all()
    up = sum(1 for h in health.values() if h.status == "up")
    audit = rt.audit.status()
    audit_ok = audit["status"] == "up"
    shared = rt.shared.status() if rt.shared is not None else None
    state_down = shared is not None and shared["status"] != "up"
    if rt.maintenance.active:
        status = "maintenance"
    elif (not audit_ok and audit["failClosed"]) or up == 0:
        status = "down"
    elif state_down and shared is not None and shared["onUnreachable"] == "fail_closed":
        status = "down"  # calls with a quota are refused: the balancer should know
    elif not audit_ok or audit["sealError"] is not None or up < len(health) or state_down:
        # fail-open without a store answers calls it cannot prove; a failing sealer leaves
        # the trail unsigned: both need an operator, neither stops the calls
        status = "degraded"
    else:
        status = "up"
    body = {
        "status": status,
        "version": gen.settings.version,
        "maintenance": rt.maintenance.message,
        "audit": audit,
        "state": shared or {"store": "sqlite"},
        "backends": {name: h.as_dict() for name, h in health.items()},
    }
    return (503 if status in ("down", "maintenance") else 200), body


def _in_a_word(error: object) -> str | None:
    """A backend's trouble for callers on the LC2 network: no driver text, host or user."""
    if error is None:
        return None
    text = str(error).lower()
    return "timed out" if "timed out" in text or "timeout" in text else "unavailable"


def _public_health(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """What LC2's side may know: each service's state in a word, the audit's verdict.

    Backend names (and with them hosts, databases and products), driver text, file
    paths, counts and seal errors stay on the admin listener.
    """
    backends = body["backends"]
    services = {}
    for name, service in rt.settings.services.items():
        h = backends.get(service.backend, {})
        services[name] = {
            "status": h.get("status"),
            "circuit": h.get("circuit"),
            "error": _in_a_word(h.get("error")),
        }
    audit = {"status": body["audit"]["status"], "error": _in_a_word(body["audit"]["error"])}
    shared = body["state"]
    # the shared store's reachability in a word, without naming the product
    state = (
        {"status": shared["status"], "error": _in_a_word(shared["error"])}
        if "status" in shared
        else None
    )
    return {
        "status": body["status"],
        "version": body["version"],
        "maintenance": body["maintenance"],
        "audit": audit,
        "state": state,
        "services": services,
    }


async def _service_health(
    rt: Runtime, gen: Generation, request: web.Request, service: Service, client: Client
) -> web.StreamResponse:
    """A service's health route: outside the pipeline, on purpose.

    It is no call for data: it reads the health checker's cached state, runs no backend
    query and returns no citizen's record, so an answered poll is not audited (a monitor
    polling every few seconds would bury the trail of who read whose data).  Its sign-in
    is the pipeline's own ``authenticate``, and every refusal goes through the pipeline's
    ``reject``: audited, as a ``health`` call.
    """
    if request.method not in _ALLOWED:
        refused = MethodNotAllowed(_ALLOWED)
        return await gen.pipeline.reject(
            request, refused, service.name, client=client, kind="health"
        )
    lc2 = gen.settings.lc2
    if lc2.health_requires_auth:
        try:
            await authenticate(lc2, gen.pipeline.credentials, request.headers, client)
        except GatewayError as err:
            return await gen.pipeline.reject(
                request, err, service.name, client=client, kind="health"
            )
    h = gen.health.get(service.backend).as_dict()
    status = "maintenance" if rt.maintenance.active else h["status"]
    # the backend's name is not LC2's business: the service it called is
    body = {"service": service.name, **h, "status": status, "error": _in_a_word(h["error"])}
    response = json_response(body, status=200 if status == "up" else 503)
    response.force_close()  # as for /health: polling keeps no connection open
    return response


def build_app(rt: Runtime) -> web.Application:
    settings = rt.settings
    app = web.Application(client_max_size=settings.listen.client_max_size)
    app[RUNTIME] = rt
    with_security_headers(app, tls=settings.security.tls is not None)
    door = FrontDoor(rt.lockouts)
    door.register_metrics(rt.metrics.registry)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await rt.start()
        yield
        await rt.stop()

    app.cleanup_ctx.append(lifecycle)

    async def at_the_door(
        request: web.Request, gen: Generation, client: Client, service: str | None = None
    ) -> web.StreamResponse | None:
        """The refusals every request meets first, audited: its address, then a body."""
        if not client.allowed:
            return await gen.pipeline.reject(request, AddressNotAllowed(), service, client=client)
        if request.body_exists:  # LC2 input is in the URL; a body is never read, so never drained
            body = MalformedRequest("a request body is not accepted")
            return await gen.pipeline.reject(request, body, service, client=client)
        return None

    async def health(request: web.Request) -> web.StreamResponse:
        gen = rt.current
        client = door.admit(request, gen.settings.security)
        refused = await at_the_door(request, gen, client)
        if refused is not None:
            return refused
        if request.method not in _ALLOWED:
            return await gen.pipeline.reject(request, MethodNotAllowed(_ALLOWED), client=client)
        status, body = gateway_health(rt)
        response = json_response(_public_health(rt, body), status=status)
        # a monitor polling /health must not hold a connection open forever by it
        response.force_close()
        return response

    async def dispatch(request: web.Request) -> web.StreamResponse:
        gen = rt.current  # the generation this call runs on, to its end
        pipeline = gen.pipeline
        client = door.admit(request, gen.settings.security)
        refused = await at_the_door(request, gen, client)
        if refused is not None:
            return refused
        match = gen.router.match(request.path)
        if match is None or not canonical_path(request):
            missing = NotFound(f"no endpoint at {request.path}")
            return await pipeline.reject(request, missing, client=client)
        if match.kind == "health":
            return await _service_health(rt, gen, request, match.service, client)
        service = match.service.name
        if request.method not in _ALLOWED:
            refused_method = MethodNotAllowed(_ALLOWED)
            return await pipeline.reject(request, refused_method, service, client=client)
        if rt.maintenance.active:
            closed = Maintenance(rt.maintenance.message)
            return await pipeline.reject(request, closed, service, client=client)
        gen.enter()
        try:
            return await pipeline.call(
                match.service,
                request,
                sandbox_url=match.kind == "sandbox",
                path_params=match.path_params,
                client=client,
            )
        finally:
            gen.leave()

    @web.middleware
    async def every_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            # CONNECT's host:port and OPTIONS * name no path: refused and audited like the rest
            handler = dispatch
        response = await handler(request)
        if request.body_exists:
            response.force_close()  # the body was never read: the connection can not be reused
        return response

    app.middlewares.append(every_request)
    app.router.add_route("*", "/health", health)
    # every path, a decoded newline in it too, is the gateway's to answer (as JSON)
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatch)
    return app


def _openapi(rt: Runtime) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``/openapi.json``, its builder imported at the first request, not at start-up."""
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    async def openapi(request: web.Request) -> web.StreamResponse:
        nonlocal handler
        if handler is None:
            from gateway.openapi import openapi_handler

            handler = openapi_handler(lambda: rt.settings)
        return await handler(request)

    return openapi


def build_admin_app(rt: Runtime) -> web.Application:
    """Admin listener; its life cycle is tied to the main app, which it never outlives."""
    token = {"value": ""}
    guard = admin_guard(lambda: token["value"], rt.lockouts, rt.settings.admin.hosts)
    app = web.Application(middlewares=[guard])
    app[RUNTIME] = rt
    with_security_headers(app)

    async def load_token(_: web.Application) -> None:
        token["value"] = await asyncio.to_thread(ensure_token, token_path(rt.settings.quotas.store))

    app.on_startup.append(load_token)

    async def live(_: web.Request) -> web.StreamResponse:
        return json_response({"status": "alive"})

    async def ready(_: web.Request) -> web.StreamResponse:
        return json_response({"ready": rt.ready}, status=200 if rt.ready else 503)

    async def health(_: web.Request) -> web.StreamResponse:
        status, body = gateway_health(rt)
        return json_response(body, status=status)

    async def config(_: web.Request) -> web.StreamResponse:
        # what `lc2-gateway diff` and `reload` compare a file with: no secret in it
        return json_response(summarise(rt.settings))

    async def reload(_: web.Request) -> web.StreamResponse:
        ok, message = await rt.reload(Path(rt.settings.source))
        return json_response({"reloaded": ok, "message": message}, status=200 if ok else 400)

    app.router.add_get("/metrics", make_aiohttp_handler(rt.metrics.registry))
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/health", health)
    app.router.add_get("/-/config", config)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/openapi.json", _openapi(rt))
    app.router.add_routes(status_routes(rt, gateway_health))
    return app
