"""The request pipeline, in one place.

    request (headers, credentials, parameters)  -> may reject
    plan    (grant, sandbox or backend)         -> may reject
    execute (adapter call; the only I/O)        -> may fail
    normalise (legacy values -> clean JSON)
    policy  (only the fields this consumer may see)
    respond (LC2 envelope)
    commit  (audit record durable before the answer leaves)

Each step is timed; the timings go to the ``Server-Timing`` header and, via
the call record, to metrics.  Whatever happens, exactly one record per call
reaches the observers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter

from aiohttp import web

from gateway.auth import CredentialStore
from gateway.config.runtime import Service, Settings
from gateway.errors import GatewayError, InternalError
from gateway.execute import execute
from gateway.guard import BackendGuard
from gateway.ids import new_request_id
from gateway.normalise import MapResult
from gateway.observe import CallRecord, Hub, Kind
from gateway.plan import make_plan
from gateway.policy import restrict
from gateway.quota import QuotaStore
from gateway.request import authenticate, parse_params
from gateway.respond import error_response, success_response
from gateway.security.front import Client
from gateway.security.redact import looks_like_pid

__all__ = ["Pipeline", "new_record", "server_timing"]

log = logging.getLogger("lc2_gateway.pipeline")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SANDBOX_ON = frozenset({"1", "true", "yes", "on"})


def new_record(
    request: web.Request, request_id_header: str, kind: Kind, client: Client | None = None
) -> CallRecord:
    given = request.headers.get(request_id_header, "")
    # a request id shaped like a citizen ID would put one in clear in logs and the audit
    ok = _REQUEST_ID.fullmatch(given) and not (len(given) >= 13 and looks_like_pid(given))
    rid = given if ok else new_request_id()
    return CallRecord(
        request_id=rid,
        started=time.time(),
        method=request.method,
        path=request.path,
        client_ip=client.address if client is not None else request.remote or "",
        kind=kind,
        user_agent=request.headers.get("User-Agent"),
        params={k: v for k, v in request.query.items()},
    )


_STAGES = ("request", "plan", "execute", "normalise", "audit")
_ALL_STAGES = ", ".join(f"{k};dur=%.2f" for k in _STAGES)


def server_timing(timings: Mapping[str, float]) -> str:
    """The ``Server-Timing`` header: each stage's milliseconds, in the order they ran."""
    if tuple(timings) == _STAGES:  # an answered call: one %-format (1.2 against 2.5 µs)
        request, plan, execute, normalise, audit = timings.values()
        return _ALL_STAGES % (
            request * 1000,
            plan * 1000,
            execute * 1000,
            normalise * 1000,
            audit * 1000,
        )
    return ", ".join(f"{k};dur={v * 1000:.2f}" for k, v in timings.items())


@dataclass(frozen=True, slots=True)
class Pipeline:
    settings: Settings
    credentials: CredentialStore
    guards: Mapping[str, BackendGuard]
    hub: Hub
    quotas: QuotaStore

    async def call(
        self,
        service: Service,
        request: web.Request,
        *,
        sandbox_url: bool,
        path_params: Mapping[str, str],
        client: Client,
    ) -> web.Response:
        lc2 = self.settings.lc2
        kind: Kind = "sandbox" if sandbox_url else "data"
        rec = new_record(request, lc2.headers.request_id, kind, client)
        rec.service = service.name
        rec.params.update(path_params)  # a citizen ID in the path is audited like one in the query
        t0 = perf_counter()
        timings = rec.timings
        try:
            caller = await authenticate(lc2, self.credentials, request.headers, client)
            rec.consumer, rec.office, rec.officer = (
                caller.consumer.name,
                caller.office,
                caller.officer,
            )
            sandbox = sandbox_url or (
                request.headers.get(lc2.headers.sandbox, "").strip().lower() in _SANDBOX_ON
            )
            rec.sandbox = sandbox
            rec.kind = "sandbox" if sandbox else "data"
            params = parse_params(service, lc2, request.query, path_params)
            t1 = perf_counter()
            timings["request"] = t1 - t0

            plan = await make_plan(
                service, caller, params, sandbox=sandbox, guards=self.guards, quotas=self.quotas
            )
            t2 = perf_counter()
            timings["plan"] = t2 - t1

            rows = await execute(plan)
            t3 = perf_counter()
            timings["execute"] = t3 - t2
            if not sandbox:
                rec.backend_duration = t3 - t2

            mapped: MapResult = service.mapper.map_rows(rows)
            rec.rows = len(mapped.rows)
            rec.failed_fields = mapped.failed_fields
            data = restrict(caller.consumer.policies, service.name, mapped.rows)
            t4 = perf_counter()
            timings["normalise"] = t4 - t3

            rec.status, rec.code = 200, lc2.envelope.success_code
            response = success_response(lc2, data, self._headers(rec))
        except GatewayError as err:
            response = self._error(rec, err)
        except Exception:
            log.exception("unexpected error in the pipeline (request %s)", rec.request_id)
            response = self._error(rec, InternalError())
        return await self.finish(rec, response, t0)

    async def reject(
        self,
        request: web.Request,
        err: GatewayError,
        service: str | None = None,
        *,
        client: Client | None = None,
        kind: Kind | None = None,
    ) -> web.Response:
        """Answer a call refused before the pipeline (404, 405, maintenance); audited too."""
        if kind is None:
            kind = "unrouted" if service is None else "data"
        rec = new_record(request, self.settings.lc2.headers.request_id, kind, client)
        if service is not None:
            rec.service = service
        return await self.finish(rec, self._error(rec, err), perf_counter())

    def _error(self, rec: CallRecord, err: GatewayError) -> web.Response:
        rec.status, rec.code, rec.error = err.status, err.code, err.detail
        return error_response(self.settings.lc2, err, rec.request_id, self._headers(rec))

    def _headers(self, rec: CallRecord) -> dict[str, str]:
        return {self.settings.lc2.headers.request_id: rec.request_id}

    async def finish(self, rec: CallRecord, response: web.Response, t0: float) -> web.Response:
        t_commit = perf_counter()
        # the audit keeps the latency up to its own commit: the record is built before it
        rec.duration = t_commit - t0
        try:
            await self.hub.commit(rec)
        except GatewayError as err:
            # Fail closed: an answer whose access can not be proven is not given.
            response = self._error(rec, err)
        done = perf_counter()
        rec.timings["audit"] = done - t_commit
        rec.duration = done - t0
        response.headers["Server-Timing"] = server_timing(rec.timings)
        self.hub.observe(rec)
        return response
