"""Legacy HTTP backend (httpx): old endpoints that answer XML or irregular JSON.

A service describes one request: method, path, query, headers and body are
templates with ``{param}`` references, filled per call with the validated
parameters (percent-encoded in the path, encoded by httpx in the query,
escaped in an XML body, typed in a JSON body).  The answer is read with the
same size cap and the same safe XML reader as SOAP answers, and rows are
taken by path.  Upstream status codes become gateway errors by sensible
defaults that a service can override per status; an answer that carries its
own error code in a 200 (``{"resultCode": "404", ...}``) can be mapped like
a SOAP Fault.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote
from xml.sax.saxutils import escape

import httpx
import orjson
from pydantic import Field, SecretStr, model_validator

from adapters._http import (
    FaultRule,
    FaultRules,
    HttpClientOptions,
    HttpUrl,
    Slots,
    fault_error,
    header_value,
    make_async_client,
    open_connections,
    read_capped,
    redact,
    ssl_context,
    status_error,
    transport_error,
)
from adapters._param_fill import Rendered, Template, compile_template, compile_text, text_of
from adapters._xml import (
    MalformedDocument,
    RowPath,
    UnsafeDocument,
    parse_json,
    parse_xml,
    rows_from_json,
    rows_from_xml,
    value_at_json,
    value_at_xml,
)
from gateway.adapter import (
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendNoRecord,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    OptionsModel,
    PoolStats,
    PrepareError,
    Row,
)

__all__ = ["FACTORY", "HttpAdapter", "HttpFactory", "HttpOperation", "HttpOptions"]

log = logging.getLogger("lc2_gateway.adapters.http")

StatusAction = Literal[
    "parse", "empty", "bad_request", "not_found", "error", "busy", "unavailable", "timeout"
]


class BasicAuth(OptionsModel):
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="${ENV}")


class HttpProbe(OptionsModel):
    method: Literal["HEAD", "GET"] = "HEAD"
    path: str = Field(default="", description="appended to base_url")
    status: list[int] = Field(
        default_factory=list, description="statuses that mean healthy (default: any answer)"
    )


class HttpOptions(HttpClientOptions):
    base_url: HttpUrl = Field(description="scheme, host and base path of the upstream")
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = Field(default=None, description="${ENV}")
    probe: HttpProbe = Field(default_factory=HttpProbe, description="health check request")

    @model_validator(mode="after")
    def _one_auth(self) -> HttpOptions:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self


class ErrorDocument(OptionsModel):
    """Where an answer that says "error" in its own words keeps its code and message."""

    code: str = Field(min_length=1, description="path to the answer's own result code")
    message: str = Field(default="", description="path to its message")
    ok: list[str] = Field(min_length=1, description="codes that mean success")


class HttpOperation(OptionsModel):
    """``operation:`` block of a service on an HTTP backend."""

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(default="", description="appended to base_url; {param} percent-encoded")
    query: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="POST a JSON document")
    form: dict[str, Any] | None = Field(default=None, description="POST form fields")
    xml: str | None = Field(default=None, description="POST this XML text ({param} escaped)")
    content_type: str | None = Field(default=None, description="of the body, if not the usual")
    response: Literal["auto", "json", "xml"] = "auto"
    rows: str = Field(default="", description="path to the rows (JSON keys or XML elements)")
    max_rows: int = Field(default=1000, ge=1, le=100_000)
    status: dict[int, StatusAction] = Field(
        default_factory=dict, description="what an upstream status means, e.g. {404: empty}"
    )
    error_document: ErrorDocument | None = None
    faults: list[FaultRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _body(self) -> HttpOperation:
        bodies = [b for b in (self.json_body, self.form, self.xml) if b is not None]
        if len(bodies) > 1:
            raise ValueError("give at most one of json, form or xml")
        if bodies and self.method != "POST":
            raise ValueError("a body needs method: POST")
        for code in self.status:
            if not 100 <= code <= 599:
                raise ValueError(f"status {code} is not an HTTP status")
        if self.faults and self.error_document is None:
            raise ValueError("faults need error_document to say where the code is")
        return self


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    method: str
    path: Template
    query: tuple[tuple[str, Rendered], ...]
    headers: tuple[tuple[str, Template], ...]
    body: Rendered | None
    body_kind: Literal["none", "json", "form", "xml"]
    content_type: str | None
    response: Literal["auto", "json", "xml"]
    rows: RowPath
    max_rows: int
    status: Mapping[int, StatusAction]
    error_code: RowPath | None
    error_message: RowPath | None
    ok_codes: frozenset[str]
    faults: FaultRules


def _path_escape(value: str) -> str:
    # every character that could change the URL's structure is encoded; "." and ".."
    # alone would be dot-segments that climb out of the service's path
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _xml_escape(value: str) -> str:
    return escape(value, {'"': "&quot;", "'": "&apos;"})


def _mapped_status_error(action: StatusAction, status: int, reason: str) -> Exception:
    """The error a service's ``status:`` action (other than parse and empty) stands for."""
    what = f"HTTP {status}"
    if action == "bad_request":
        return BackendRejected(what, reason)
    if action == "not_found":
        return BackendNoRecord(what, reason)
    if action == "busy":
        return BackendBusy(f"the upstream is busy ({what})")
    if action == "unavailable":
        return BackendUnavailable(f"the upstream is unavailable ({what})")
    if action == "timeout":
        return BackendTimeout(f"the upstream timed out ({what})")
    return BackendError(f"the upstream answered {what} {reason}".strip())


class HttpAdapter:
    def __init__(self, name: str, options: HttpOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._slots = Slots(limits.pool_size, limits.acquire_timeout)
        self._http: httpx.AsyncClient | None = None
        self._base = options.base_url.rstrip("/")
        self._closed = False

    async def open(self) -> None:
        opts = self._options
        for warning in opts.tls_warnings(self.name):
            log.warning(warning)
        try:
            ctx = await asyncio.to_thread(ssl_context, opts)
        except ValueError as exc:
            raise BackendError(f"TLS settings of backend {self.name}: {exc}") from None
        http = make_async_client(
            opts, ctx, timeout=self._limits.query_timeout, connections=self._limits.pool_size + 1
        )
        if opts.basic_auth is not None:
            http.auth = httpx.BasicAuth(
                opts.basic_auth.username, opts.basic_auth.password.get_secret_value()
            )
        elif opts.bearer_token is not None:
            http.headers["Authorization"] = f"Bearer {opts.bearer_token.get_secret_value()}"
        self._http = http

    async def close(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        return self._http

    def _url(self, path: str) -> str:
        # no path: the base URL exactly as written (it may name a script, not a directory)
        return self._base + "/" + path.lstrip("/") if path else self._options.base_url

    def _request(self, req: PreparedRequest, params: Mapping[str, object]) -> httpx.Request:
        query: list[tuple[str, str | int | float | bool | None]] = []
        for key, fill in req.query:
            value = fill(params)
            for v in value if isinstance(value, list) else [value]:
                if v is not None:
                    query.append((key, text_of(v)))
        headers = {k: header_value(t.render(params)) for k, t in req.headers}
        content: bytes | None = None
        data: dict[str, str] | None = None
        if req.body is not None:
            value = req.body(params)
            if req.body_kind == "json":
                content = orjson.dumps(value)
                headers.setdefault("Content-Type", "application/json")
            elif req.body_kind == "form":
                data = {k: text_of(v) for k, v in _mapping(value).items() if v is not None}
            else:
                content = str(value).encode("utf-8")
                headers.setdefault("Content-Type", "text/xml; charset=utf-8")
        if req.content_type:
            headers["Content-Type"] = req.content_type
        return self._client().build_request(
            req.method,
            self._url(req.path.render(params, _path_escape)),
            params=query,
            headers=headers,
            content=content,
            data=data,
        )

    async def _send(self, request: httpx.Request) -> tuple[int, str, str, bytes]:
        http = self._client()
        timeout = self._limits.query_timeout
        limit = self._options.max_response_bytes

        async def exchange() -> tuple[int, str, str, bytes]:
            resp = await http.send(request, stream=True)
            try:
                body = await read_capped(resp, limit)
            finally:
                await resp.aclose()
            return resp.status_code, resp.reason_phrase, resp.headers.get("content-type", ""), body

        async with self._slots.take():
            try:
                return await asyncio.wait_for(exchange(), timeout)
            except (httpx.HTTPError, TimeoutError, OSError) as exc:
                raise transport_error(exc, timeout) from None

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        req: PreparedRequest = operation
        status, reason, ctype, body = await self._send(self._request(req, params))
        reason = redact(reason, params, limit=60)  # the status line is the upstream's text too
        action = req.status.get(status)
        if action is None and not 200 <= status < 300:
            raise status_error(status, reason)
        if action == "empty":
            return []
        if action is not None and action != "parse":
            raise _mapped_status_error(action, status, reason)
        if not body.strip():
            return []  # 204, or a legacy "nothing found" with an empty 200
        return self._rows(req, ctype, body, params)

    def _rows(
        self, req: PreparedRequest, ctype: str, body: bytes, params: Mapping[str, object]
    ) -> list[Row]:
        kind = req.response
        if kind == "auto":
            lowered = ctype.lower()
            if "json" in lowered:
                kind = "json"
            elif "xml" in lowered:
                kind = "xml"
            else:
                kind = "xml" if body.lstrip()[:1] == b"<" else "json"
        try:
            if kind == "json":
                doc = parse_json(body)
                code = value_at_json(doc, req.error_code) if req.error_code else None
                message = value_at_json(doc, req.error_message) if req.error_message else None
            else:
                tops = [parse_xml(body, self._options.response_encoding)]
                code = value_at_xml(tops, req.error_code) if req.error_code else None
                message = value_at_xml(tops, req.error_message) if req.error_message else None
            if code is not None and text_of(code) not in req.ok_codes:
                err = fault_error(req.faults, text_of(code), text_of(message), params)
                if err is None:
                    return []
                raise err
            if kind == "json":
                return list(rows_from_json(doc, req.rows, req.max_rows))
            return list(rows_from_xml(tops, req.rows, req.max_rows))
        except (UnsafeDocument, MalformedDocument) as exc:
            raise BackendBadResponse(str(exc)) from None
        except RecursionError:  # JSON may nest ~1000 deep; flattening it is not worth a crash
            raise BackendBadResponse("the answer is nested too deeply") from None

    async def probe(self) -> None:
        check = self._options.probe
        http = self._client()
        timeout = self._limits.query_timeout
        try:
            resp = await http.request(check.method, self._url(check.path), timeout=timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, timeout) from None
        if check.status and resp.status_code not in check.status:
            raise BackendError(f"health check answered HTTP {resp.status_code}")

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=open_connections(self._http), in_use=self._slots.in_use)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


class HttpFactory:
    type_name: ClassVar[str] = "http"
    options_model: ClassVar[type[OptionsModel]] = HttpOptions
    operation_model: ClassVar[type[OptionsModel]] = HttpOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> PreparedRequest:
        opts: HttpOptions = options
        op: HttpOperation = operation
        try:
            ssl_context(opts)
        except ValueError as exc:
            raise PrepareError(f"backend TLS settings: {exc}") from None
        body: Rendered | None = None
        kind: Literal["none", "json", "form", "xml"] = "none"
        if op.json_body is not None:
            body, kind = compile_template(op.json_body, param_names, ("json",)), "json"
        elif op.form is not None:
            body, kind = compile_template(op.form, param_names, ("form",)), "form"
        elif op.xml is not None:
            xml = compile_text(op.xml, param_names, ("xml",))
            body, kind = (lambda p: xml.render(p, _xml_escape)), "xml"
        try:
            rows = RowPath.parse(op.rows)
            doc = op.error_document
            code = RowPath.parse(doc.code) if doc else None
            message = RowPath.parse(doc.message) if doc and doc.message else None
        except ValueError as exc:
            raise PrepareError(str(exc), ("rows",)) from None
        return PreparedRequest(
            method=op.method,
            path=compile_text(op.path, param_names, ("path",)),
            query=tuple(
                (k, compile_template(v, param_names, ("query", k))) for k, v in op.query.items()
            ),
            headers=tuple(
                (k, compile_text(v, param_names, ("headers", k))) for k, v in op.headers.items()
            ),
            body=body,
            body_kind=kind,
            content_type=op.content_type,
            response=op.response,
            rows=rows,
            max_rows=op.max_rows,
            status=dict(op.status),
            error_code=code,
            error_message=message,
            ok_codes=frozenset(doc.ok) if doc else frozenset(),
            faults=FaultRules.compile(op.faults),
        )

    def create(self, name: str, options: Any, limits: BackendLimits) -> HttpAdapter:
        return HttpAdapter(name, options, limits)


FACTORY = HttpFactory()
