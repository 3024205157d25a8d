"""SOAP backend (zeep's AsyncClient over httpx): vendor web services as LC2 providers.

zeep builds each request from the WSDL's types (document/literal, rpc/literal,
SOAP 1.1 or 1.2 as the chosen port's binding says) and applies WS-Security;
the answer is read here, not by zeep: its size is capped while it streams,
it is parsed with entities, DTDs and network access refused (``_xml``), and
rows are taken by element path below ``soap:Body``.  That keeps one safe XML
reader for SOAP and plain HTTP backends, and paths an operator can read off
a sample answer in SoapUI.

The WSDL is parsed once, in a worker thread, when the backend opens (zeep
loads it synchronously); if it can not be fetched then, the gateway still
starts and loading is retried by the next call or health probe.  A WSDL that
is a local file is also read by ``lc2-gateway check``, so an unknown
operation or request element is a config error with its line; a WSDL URL is
never fetched at check time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import zeep
import zeep.exceptions
from pydantic import Field, SecretStr
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsdl.utils import etree_to_string
from zeep.wsse.username import UsernameToken

from adapters._http import (
    FaultRule,
    FaultRules,
    HttpClientOptions,
    HttpUrl,
    Slots,
    fault_error,
    make_async_client,
    open_connections,
    read_capped,
    read_capped_sync,
    redact,
    ssl_context,
    status_error,
    transport_error,
)
from adapters._param_fill import Rendered, compile_template
from adapters._wsdl_rows import row_columns
from adapters._xml import (
    MalformedDocument,
    RowPath,
    UnsafeDocument,
    find_soap_body,
    parse_xml,
    rows_from_xml,
)
from gateway.adapter import (
    BackendBadResponse,
    BackendError,
    BackendLimits,
    BackendUnavailable,
    OptionsModel,
    PoolStats,
    PrepareError,
    Row,
)

__all__ = ["FACTORY", "SoapAdapter", "SoapFactory", "SoapOperation", "SoapOptions"]

log = logging.getLogger("lc2_gateway.adapters.soap")

_WSDL_RETRY_AFTER = 5.0  # seconds between two attempts to load a WSDL that failed
_CHECK_CACHE_MAX = 32  # parsed WSDL files kept for config checks and reloads


class WsseOptions(OptionsModel):
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="${ENV}")
    digest: bool = Field(default=False, description="PasswordDigest instead of PasswordText")


class SoapProbe(OptionsModel):
    operation: str = Field(min_length=1, description="a cheap operation (Ping, GetVersion)")
    request: dict[str, Any] = Field(default_factory=dict, description="its fixed arguments")


class SoapOptions(HttpClientOptions):
    wsdl: HttpUrl | Path = Field(description="WSDL file (relative to the config) or URL")
    service: str | None = Field(default=None, description="WSDL service (default: the first)")
    port: str | None = Field(default=None, description="port of that service (default: first)")
    endpoint: HttpUrl | None = Field(default=None, description="overrides the WSDL's address")
    wsse: WsseOptions | None = Field(default=None, description="WS-Security UsernameToken")
    wsdl_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds to load it")
    wsdl_fetch_imports: bool = Field(
        default=False, description="follow http(s) imports of the WSDL at start-up (WCF ?wsdl)"
    )
    max_wsdl_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    probe: SoapProbe | None = Field(
        default=None, description="health: call this operation; else a HEAD on the endpoint"
    )


class SoapOperation(OptionsModel):
    """``operation:`` block of a service on a SOAP backend."""

    name: str = Field(min_length=1, description="WSDL operation")
    request: dict[str, Any] = Field(
        default_factory=dict, description="the request's elements; strings may hold {param}"
    )
    rows: str = Field(
        min_length=1, description="element path below soap:Body to the repeated row element"
    )
    max_rows: int = Field(default=1000, ge=1, le=100_000)
    faults: list[FaultRule] = Field(
        default_factory=list, description="what a SOAP Fault means; first match wins"
    )


@dataclass(frozen=True, slots=True)
class PreparedCall:
    name: str
    render: Rendered
    rows: RowPath
    max_rows: int
    faults: FaultRules


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    reason: str
    body: bytes


def _settings(fetch_imports: bool) -> zeep.Settings:
    # raw_response: zeep hands back the bytes and this module parses them safely
    return zeep.Settings(
        strict=True,
        raw_response=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=not fetch_imports,
    )


class _CappedTransport(AsyncTransport):
    """zeep's async transport, with size caps and without logging message bodies."""

    def __init__(
        self, client: httpx.AsyncClient, wsdl_client: httpx.Client, limit: int, wsdl_limit: int
    ) -> None:
        headers, wsdl_headers = client.headers.copy(), wsdl_client.headers.copy()
        super().__init__(client=client, wsdl_client=wsdl_client)  # type: ignore[no-untyped-call]
        client.headers, wsdl_client.headers = headers, wsdl_headers  # zeep resets them
        self._limit = limit
        self._wsdl_limit = wsdl_limit

    async def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> _Reply:
        message = etree_to_string(envelope)  # type: ignore[no-untyped-call]
        async with self.client.stream("POST", address, content=message, headers=headers) as resp:
            body = await read_capped(resp, self._limit)
            return _Reply(resp.status_code, resp.reason_phrase, body)

    def _load_remote_data(self, url: str) -> bytes:
        with self.wsdl_client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise zeep.exceptions.TransportError(status_code=resp.status_code)  # type: ignore[no-untyped-call]
            return read_capped_sync(resp, self._wsdl_limit)


class _OfflineTransport(zeep.Transport):
    """For ``check``: reads local files only; a WSDL that needs the network is not checked."""

    def load(self, url: str) -> bytes:
        if urlsplit(url).scheme in ("http", "https"):
            raise _NeedsNetwork(url)
        data: bytes = super().load(url)  # type: ignore[no-untyped-call]
        return data


class _NeedsNetwork(Exception):
    pass


def _bind(client: Any, opts: SoapOptions) -> AsyncServiceProxy:
    services = client.wsdl.services
    if not services:
        raise LookupError("the WSDL defines no service")
    if opts.service is not None and opts.service not in services:
        raise LookupError(f"no service {opts.service!r} in the WSDL (has: {', '.join(services)})")
    service = services[opts.service] if opts.service else next(iter(services.values()))
    ports = service.ports
    if opts.port is not None and opts.port not in ports:
        raise LookupError(
            f"no port {opts.port!r} in service {service.name} (has: {', '.join(ports)})"
        )
    port = ports[opts.port] if opts.port else next(iter(ports.values()))
    address = opts.endpoint or port.binding_options.get("address")
    if not address:
        raise LookupError("the WSDL's port has no address: set endpoint")
    return AsyncServiceProxy(client, port.binding, address=address)  # type: ignore[no-untyped-call]


def _operations(proxy: AsyncServiceProxy) -> dict[str, Any]:
    ops: dict[str, Any] = proxy._binding.all()
    return ops


class SoapAdapter:
    def __init__(self, name: str, options: SoapOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._slots = Slots(limits.pool_size, limits.acquire_timeout)
        self._http: httpx.AsyncClient | None = None
        self._ctx: Any = None
        self._client: Any = None
        self._proxy: AsyncServiceProxy | None = None
        self._lock = asyncio.Lock()
        self._failed_at = float("-inf")
        self._load_error = "the WSDL is not loaded yet"
        self._closed = False

    async def open(self) -> None:
        opts = self._options
        for warning in opts.tls_warnings(self.name):
            log.warning(warning)
        address = opts.endpoint or str(opts.wsdl)
        if opts.wsse is not None and not opts.wsse.digest and urlsplit(address).scheme == "http":
            log.warning(
                "backend %s: the WS-Security password is sent in clear text over plain HTTP",
                self.name,
            )
        try:
            self._ctx = await asyncio.to_thread(ssl_context, opts)
        except ValueError as exc:  # a certificate file that can not be read: refuse to start
            raise BackendError(f"TLS settings of backend {self.name}: {exc}") from None
        # one connection more than the call slots, so a health probe never waits for one
        self._http = make_async_client(
            opts,
            self._ctx,
            timeout=self._limits.query_timeout,
            connections=self._limits.pool_size + 1,
        )
        try:
            await self._ready()
        except BackendUnavailable as exc:
            log.warning("backend %s: %s; retrying on the next call or probe", self.name, exc)

    async def close(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        self._proxy = self._client = None
        if http is not None:
            await http.aclose()

    async def _ready(self) -> AsyncServiceProxy:
        if self._closed or self._http is None:
            raise BackendUnavailable("adapter closed" if self._closed else "adapter not opened")
        proxy = self._proxy
        if proxy is not None:
            return proxy
        async with self._lock:
            if self._proxy is not None:
                return self._proxy
            if time.monotonic() - self._failed_at < _WSDL_RETRY_AFTER:
                raise BackendUnavailable(self._load_error)
            try:
                self._client, loaded = await asyncio.to_thread(self._load, self._http)
            except Exception as exc:
                self._failed_at = time.monotonic()
                self._load_error = self._describe_load_error(exc)
                raise BackendUnavailable(self._load_error) from None
            log.info("backend %s: WSDL loaded", self.name)
            self._proxy = loaded
            return loaded

    def _describe_load_error(self, exc: BaseException) -> str:
        if isinstance(exc, httpx.HTTPError):
            reason = str(transport_error(exc, self._options.wsdl_timeout))
        elif isinstance(exc, zeep.exceptions.TransportError):
            reason = f"HTTP {exc.status_code}"
        elif isinstance(exc, zeep.exceptions.ExternalReferenceForbidden):
            reason = "it imports documents over http(s); set wsdl_fetch_imports: true"
        elif isinstance(exc, LookupError):
            reason = str(exc)
        else:
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        log.warning("backend %s: cannot load the WSDL: %s", self.name, reason)
        return f"cannot load the WSDL: {reason}"

    def _load(self, http: httpx.AsyncClient) -> tuple[Any, AsyncServiceProxy]:
        """Runs in a worker thread: zeep parses the WSDL synchronously."""
        opts = self._options
        wsdl_http = httpx.Client(
            verify=self._ctx,
            timeout=httpx.Timeout(opts.wsdl_timeout, connect=opts.connect_timeout),
            headers={"User-Agent": opts.user_agent, **opts.headers},
            follow_redirects=True,
            trust_env=False,
        )
        # the sync client serves only this load: closed at once, nothing left open
        with wsdl_http:
            transport = _CappedTransport(
                http, wsdl_http, opts.max_response_bytes, opts.max_wsdl_bytes
            )
            wsse = None
            if opts.wsse is not None:
                wsse = UsernameToken(  # type: ignore[no-untyped-call]
                    opts.wsse.username,
                    opts.wsse.password.get_secret_value(),
                    use_digest=opts.wsse.digest,
                )
            client = zeep.AsyncClient(  # type: ignore[no-untyped-call]
                str(opts.wsdl),
                transport=transport,
                settings=_settings(opts.wsdl_fetch_imports),
                wsse=wsse,
            )
            return client, _bind(client, opts)

    async def _call(
        self, name: str, kwargs: Mapping[str, Any], params: Mapping[str, object]
    ) -> _Reply:
        proxy = await self._ready()
        if name not in _operations(proxy):
            raise BackendError(f"operation {name} is not in the WSDL")
        timeout = self._limits.query_timeout
        async with self._slots.take():
            try:
                reply: _Reply = await asyncio.wait_for(proxy[name](**kwargs), timeout)
            except (httpx.HTTPError, TimeoutError, OSError) as exc:
                raise transport_error(exc, timeout) from None
            except (TypeError, ValueError, zeep.exceptions.Error) as exc:
                why = redact(str(exc), params, limit=200)
                raise BackendError(f"cannot build the {name} request: {why}") from None
        return reply

    def _read(self, reply: _Reply, call: PreparedCall, params: Mapping[str, object]) -> list[Row]:
        ok = 200 <= reply.status < 300
        reason = redact(reply.reason, params, limit=60)
        if not reply.body.strip():
            if ok:
                raise BackendBadResponse("the upstream sent an empty answer")
            raise status_error(reply.status, reason)
        try:
            body, fault = find_soap_body(parse_xml(reply.body, self._options.response_encoding))
        except UnsafeDocument as exc:
            raise BackendBadResponse(str(exc)) from None
        except MalformedDocument as exc:
            if not ok:  # a proxy's HTML error page, say: the status says more
                raise status_error(reply.status, reason) from None
            raise BackendBadResponse(str(exc)) from None
        if fault is not None:
            err = fault_error(call.faults, fault.code, fault.string, params)
            if err is None:
                return []
            raise err
        if not ok:
            raise status_error(reply.status, reason)
        try:
            return list(rows_from_xml(list(body), call.rows, call.max_rows))
        except MalformedDocument as exc:
            raise BackendBadResponse(str(exc)) from None

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        call: PreparedCall = operation
        kwargs = call.render(params)
        assert isinstance(kwargs, dict)
        reply = await self._call(call.name, kwargs, params)
        return self._read(reply, call, params)

    async def probe(self) -> None:
        proxy = await self._ready()
        check = self._options.probe
        if check is not None:
            reply = await self._call(check.operation, check.request, {})
            self._read(reply, _PROBE_READ, {})
            return
        address = proxy._binding_options["address"]
        http = self._http
        if http is None:
            raise BackendUnavailable("adapter closed")
        try:  # reachability: any HTTP status means the server is there
            await http.head(address, timeout=self._limits.query_timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._limits.query_timeout) from None

    async def result_columns(self, operation: Any) -> list[str] | None:
        call: PreparedCall = operation
        ops = _operations(await self._ready())
        if call.name not in ops:
            raise PrepareError(f"operation {call.name!r} is not in the WSDL", ("name",))
        return row_columns(ops[call.name], call.rows)

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=open_connections(self._http), in_use=self._slots.in_use)


# a probe's answer is only checked for faults and well-formedness
_PROBE_READ = PreparedCall("probe", lambda p: {}, RowPath(()), 1, FaultRules(()))


class SoapFactory:
    type_name: ClassVar[str] = "soap"
    options_model: ClassVar[type[OptionsModel]] = SoapOptions
    operation_model: ClassVar[type[OptionsModel]] = SoapOperation

    def __init__(self) -> None:
        # parsed local WSDLs and checked TLS files, so a config with many services reads each once
        self._wsdl_cache: dict[tuple[object, ...], tuple[Any, AsyncServiceProxy | None]] = {}
        self._tls_checked: set[str] = set()

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> PreparedCall:
        opts: SoapOptions = options
        op: SoapOperation = operation
        try:
            rows = RowPath.parse(op.rows)
        except ValueError as exc:
            raise PrepareError(str(exc), ("rows",)) from None
        if not rows.segments:
            raise PrepareError("rows must name at least the response element", ("rows",))
        render = compile_template(op.request, param_names, ("request",))
        self._check_tls(opts)
        if isinstance(opts.wsdl, Path):
            self._check_against_wsdl(opts, op, render, param_names)
        return PreparedCall(op.name, render, rows, op.max_rows, FaultRules.compile(op.faults))

    def _check_tls(self, opts: SoapOptions) -> None:
        key = opts.model_dump_json()
        if key in self._tls_checked:
            return
        try:
            ssl_context(opts)
        except ValueError as exc:
            raise PrepareError(f"backend TLS settings: {exc}") from None
        if len(self._tls_checked) >= _CHECK_CACHE_MAX:
            self._tls_checked.clear()
        self._tls_checked.add(key)

    def _offline(self, opts: SoapOptions) -> tuple[Any, AsyncServiceProxy | None]:
        path = Path(opts.wsdl)
        try:
            st = path.stat()
        except OSError:
            raise PrepareError(f"the backend's WSDL file {path} does not exist") from None
        key = (str(path), st.st_mtime_ns, st.st_size, opts.service, opts.port, opts.endpoint)
        if key not in self._wsdl_cache:
            if len(self._wsdl_cache) >= _CHECK_CACHE_MAX:  # edited files over many reloads
                self._wsdl_cache.clear()
            try:
                client = zeep.Client(  # type: ignore[no-untyped-call]
                    str(path),
                    transport=_OfflineTransport(),  # type: ignore[no-untyped-call]
                    settings=_settings(False),
                )
            except (_NeedsNetwork, zeep.exceptions.ExternalReferenceForbidden):
                self._wsdl_cache[key] = (None, None)  # checked at start-up instead
                return None, None
            except Exception as exc:
                raise PrepareError(f"cannot read the WSDL {path.name}: {exc}") from None
            try:
                self._wsdl_cache[key] = (client, _bind(client, opts))
            except LookupError as exc:
                raise PrepareError(f"WSDL {path.name}: {exc}") from None
        return self._wsdl_cache[key]

    def _check_against_wsdl(
        self, opts: SoapOptions, op: SoapOperation, render: Rendered, names: Sequence[str]
    ) -> None:
        client, proxy = self._offline(opts)
        if client is None or proxy is None:
            return
        ops = _operations(proxy)
        calls: list[tuple[str, Rendered, tuple[str, ...]]] = [(op.name, render, ("name",))]
        if opts.probe is not None:
            calls.append((opts.probe.operation, compile_template(opts.probe.request, ()), ()))
        for name, fill, where in calls:
            if name not in ops:
                raise PrepareError(
                    f"operation {name!r} is not in the WSDL (it has: {', '.join(sorted(ops))})",
                    where,
                )
            try:  # sample values: only the request's shape is checked here
                sample = fill(dict.fromkeys(names, "0"))
                assert isinstance(sample, dict)
                client.create_message(proxy, name, **sample)
            except TypeError as exc:
                if "unexpected keyword" in str(exc):
                    raise PrepareError(
                        f"request does not fit operation {name}: {exc}", ("request",)
                    ) from None
            except Exception:  # a value the sample can not stand for: checked per call
                pass

    def request_elements(self, options: Any, name: str) -> list[str]:
        """The elements of an operation's request, from a local WSDL (``scaffold``)."""
        opts: SoapOptions = options
        if not isinstance(opts.wsdl, Path):
            raise PrepareError("the backend's WSDL is a URL: save it as a file next to the config")
        client, proxy = self._offline(opts)
        if client is None or proxy is None:
            raise PrepareError("the WSDL imports documents from the network: save them as files")
        ops = _operations(proxy)
        if name not in ops:
            known = ", ".join(sorted(ops))
            raise PrepareError(f"operation {name!r} is not in the WSDL (it has: {known})")
        body = ops[name].input.body
        elements = getattr(getattr(body, "type", None), "elements", None) or []
        return [str(n) for n, _ in elements]

    def create(self, name: str, options: Any, limits: BackendLimits) -> SoapAdapter:
        return SoapAdapter(name, options, limits)


FACTORY = SoapFactory()
