"""What the SOAP and HTTP adapters share: one httpx client stack, TLS, limits, faults.

Both adapters talk to the upstream through one ``httpx.AsyncClient`` per
backend (zeep's async transport is httpx too, so the process has one HTTP
client stack).  Everything an answer can do wrong ends here as one of the
gateway's backend errors, with a short reason that names neither the
upstream's address nor any parameter value: the reason reaches the audit
trail and the caller.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import re
import ssl
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

from gateway.adapter import (
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendFault,
    BackendNoRecord,
    BackendRejected,
    BackendTimeout,
    BackendTLSError,
    BackendUnavailable,
    OptionsModel,
)

__all__ = [
    "FaultAction",
    "FaultRule",
    "FaultRules",
    "HttpClientOptions",
    "HttpUrl",
    "Slots",
    "fault_error",
    "header_value",
    "make_async_client",
    "open_connections",
    "read_capped",
    "read_capped_sync",
    "redact",
    "ssl_context",
    "status_error",
    "too_large",
    "transport_error",
]

log = logging.getLogger("lc2_gateway.adapters")
# httpx logs every request URL at INFO, and a legacy URL carries citizen IDs: keep it quiet
logging.getLogger("httpx").setLevel(logging.WARNING)

HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")]

FaultAction = Literal["empty", "bad_request", "not_found", "error"]

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# OpenSSL's SSL_OP_LEGACY_SERVER_CONNECT; the ssl module names it from Python 3.12 on
_OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)


class HttpClientOptions(OptionsModel):
    """Connection options every HTTP-speaking backend has."""

    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers on every call (${ENV} for secrets)"
    )
    user_agent: str = Field(default="lc2-gateway", min_length=1)
    connect_timeout: float = Field(default=5.0, gt=0, le=300, description="seconds per connect")
    max_response_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="larger answers are refused (308) while they stream, before parsing",
    )
    response_encoding: str | None = Field(
        default=None, description="override the charset an XML answer declares (e.g. cp874)"
    )
    ca_file: Path | None = Field(default=None, description="PEM bundle of trusted CAs")
    client_cert_file: Path | None = Field(default=None, description="PEM client certificate")
    client_key_file: Path | None = Field(default=None, description="PEM key of client_cert_file")
    client_key_password: SecretStr | None = Field(default=None, description="${ENV}")
    insecure_skip_verify: bool = Field(
        default=False, description="accept any server certificate (logged loudly at start)"
    )
    legacy_ciphers: bool = Field(
        default=False, description="allow TLS 1.0/1.1 and weak ciphers (logged loudly at start)"
    )

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name} must be one line")
        return v

    @field_validator("response_encoding")
    @classmethod
    def _encoding(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown encoding {v!r}") from None
        return v

    @model_validator(mode="after")
    def _client_pair(self) -> HttpClientOptions:
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file needs client_cert_file")
        if self.client_key_password is not None and self.client_cert_file is None:
            raise ValueError("client_key_password needs client_cert_file")
        return self

    def tls_warnings(self, backend: str) -> list[str]:
        out = []
        if self.insecure_skip_verify:
            out.append(
                f"backend {backend}: TLS CERTIFICATE VERIFICATION IS OFF (insecure_skip_verify): "
                "anyone on the network path can read and change this backend's traffic"
            )
        if self.legacy_ciphers:
            out.append(
                f"backend {backend}: legacy TLS (TLS 1.0/1.1, weak ciphers) is ALLOWED "
                "(legacy_ciphers); ask the system's owner to upgrade the server"
            )
        return out


def ssl_context(opts: HttpClientOptions) -> ssl.SSLContext:
    """The TLS settings of a backend; raises ``ValueError`` naming the file that is wrong."""
    try:
        ctx = ssl.create_default_context(cafile=str(opts.ca_file) if opts.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load ca_file {opts.ca_file}: {exc}") from None
    if opts.client_cert_file is not None:
        password = opts.client_key_password.get_secret_value() if opts.client_key_password else None
        try:
            ctx.load_cert_chain(
                str(opts.client_cert_file),
                str(opts.client_key_file) if opts.client_key_file else None,
                password,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot load client_cert_file/client_key_file {opts.client_cert_file}: {exc}"
            ) from None
    if opts.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if opts.legacy_ciphers:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # deprecated indeed: the operator opted in, and is warned
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.options |= _OP_LEGACY_SERVER_CONNECT
    return ctx


def make_async_client(
    opts: HttpClientOptions, ctx: ssl.SSLContext, *, timeout: float, connections: int
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=ctx,
        timeout=httpx.Timeout(timeout, connect=min(opts.connect_timeout, timeout)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": opts.user_agent, **opts.headers},
        follow_redirects=False,  # a redirect of a data call is a misconfiguration, not a hop
        trust_env=False,  # no proxy or netrc from the service's environment by surprise
    )


class Slots:
    """At most ``size`` calls in the upstream; a caller waits ``timeout`` at most (304)."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self._sem = asyncio.Semaphore(size)
        self._timeout = timeout
        self.in_use = 0

    @contextlib.asynccontextmanager
    async def take(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._sem.acquire(), self._timeout)
        except TimeoutError:
            raise BackendBusy(
                f"all {self.size} upstream slots busy for {self._timeout:g}s"
            ) from None
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._sem.release()


def too_large(limit: int) -> BackendBadResponse:
    return BackendBadResponse(f"the answer is larger than max_response_bytes ({limit} bytes)")


def _check_length(headers: httpx.Headers, limit: int) -> None:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The (decompressed) body, refused as soon as it passes ``limit`` bytes."""
    _check_length(response.headers, limit)
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise too_large(limit)
    return bytes(buf)


def read_capped_sync(response: httpx.Response, limit: int) -> bytes:
    _check_length(response.headers, limit)
    buf = bytearray()
    for chunk in response.iter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise too_large(limit)
    return bytes(buf)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _tls_reason(err: ssl.SSLError) -> str:
    if isinstance(err, ssl.SSLCertVerificationError) and err.verify_message:
        return f"certificate verify failed: {err.verify_message}"
    return str(err.reason or err.strerror or type(err).__name__).lower().replace("_", " ")


def transport_error(exc: BaseException, timeout: float) -> Exception:
    """An httpx (or socket) failure as a gateway backend error."""
    tls = _ssl_cause(exc)
    if tls is not None:
        return BackendTLSError(f"TLS handshake failed: {_tls_reason(tls)}")
    if isinstance(exc, httpx.PoolTimeout):
        return BackendBusy("no free upstream connection")
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendUnavailable("could not connect in time")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return BackendTimeout(f"the upstream did not answer within {timeout:g}s")
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        reason = str(exc).strip() or "connection failed"
        return BackendUnavailable(f"cannot connect: {reason[:120]}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return BackendUnavailable("the upstream closed the connection")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BackendError("the upstream URL is not usable (check the backend's address)")
    return BackendError(f"HTTP transport error ({type(exc).__name__})")


def status_error(status: int, reason: str) -> Exception:
    """Default meaning of an upstream status that the service does not map itself."""
    if status in (429, 503):
        return BackendBusy(f"the upstream is busy (HTTP {status})")
    if status == 504:
        return BackendTimeout("the upstream's own gateway timed out (HTTP 504)")
    if status in (401, 403):
        return BackendError(f"the upstream refused the gateway's credentials (HTTP {status})")
    return BackendError(f"the upstream answered HTTP {status} {reason}".strip())


# --- redaction --------------------------------------------------------------------


def redact(text: str, params: Mapping[str, object], *, limit: int = 300) -> str:
    """``text`` without any parameter value in it, on one line, at most ``limit`` characters."""
    needles = {str(v) for v in params.values() if v is not None and len(str(v)) >= 3}
    needles |= {n.strip() for n in needles if len(n.strip()) >= 3}
    for needle in sorted(needles, key=len, reverse=True):
        text = text.replace(needle, "<parameter>")
    text = re.sub(r"[\x00-\x1f\x7f\s]+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- faults -----------------------------------------------------------------------


class FaultRule(OptionsModel):
    """One entry of ``faults:``: the first rule that matches a fault decides what it means."""

    code: str | None = Field(
        default=None, description="fault code: whole (Client.NoRecord), first or last part"
    )
    match: str | None = Field(default=None, description="regular expression on the fault string")
    action: FaultAction = Field(description="empty | bad_request | not_found | error")

    @field_validator("match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _something(self) -> FaultRule:
        if self.code is None and self.match is None:
            raise ValueError("give code, match or both")
        return self


_SOAP_CLASS_ALIASES = {
    "client": "sender",
    "sender": "client",
    "server": "receiver",
    "receiver": "server",
}


def _code_matches(code: str, rule: str) -> bool:
    """The whole code, its first part (Client) or its last part (NoRecord)."""
    return code == rule or code.endswith("." + rule) or code.startswith(rule + ".")


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    code: str | None
    match: re.Pattern[str] | None
    action: FaultAction


@dataclass(frozen=True, slots=True)
class FaultRules:
    rules: tuple[_CompiledRule, ...]

    @classmethod
    def compile(cls, rules: Iterable[FaultRule]) -> FaultRules:
        return cls(
            tuple(
                _CompiledRule(
                    r.code.rpartition(":")[2].lower() if r.code else None,
                    re.compile(r.match) if r.match else None,
                    r.action,
                )
                for r in rules
            )
        )

    def action(self, code: str, string: str) -> FaultAction:
        low = code.lower()
        head, dot, rest = low.partition(".")
        codes = [low]
        if head in _SOAP_CLASS_ALIASES:  # a rule written for SOAP 1.1 fits 1.2 and back
            codes.append(_SOAP_CLASS_ALIASES[head] + dot + rest)
        for r in self.rules:
            if r.code is not None and not any(_code_matches(c, r.code) for c in codes):
                continue
            if r.match is not None and not r.match.search(string):
                continue
            return r.action
        return "error"


def fault_error(
    rules: FaultRules, code: str, string: str, params: Mapping[str, object]
) -> BackendFault | None:
    """The error a fault becomes, or None when the service maps it to an empty answer."""
    action = rules.action(code, string)
    if action == "empty":
        return None
    code, string = redact(code, params, limit=100), redact(string, params)
    if action == "bad_request":
        return BackendRejected(code, string)
    if action == "not_found":
        return BackendNoRecord(code, string)
    return BackendFault(code, string)


def header_value(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise BackendRejected("InvalidHeader", "a parameter value cannot be sent in a header")
    return value


def open_connections(http: httpx.AsyncClient | None) -> int:
    """Connections in the client's pool, for metrics: httpx does not publish it, so read
    it defensively and report 0 where a version keeps it elsewhere."""
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    conns = getattr(pool, "connections", None)
    return len(conns) if isinstance(conns, list) else 0
