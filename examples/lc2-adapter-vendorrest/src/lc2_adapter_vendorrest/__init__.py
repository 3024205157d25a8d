"""An lc2-gateway adapter for a vendor's paged REST API (an example to copy).

The vendor answers ``GET {base_url}/{resource}?...&page=N&per_page=M`` with
``{"items": [...], "next_page": N + 1 or null}`` and refuses a bad request
with HTTP 4xx and ``{"error": {"code": ..., "message": ...}}``.  The adapter
follows the pages until ``max_rows`` rows are in hand or the vendor has no
more, so one LC2 call is one answer however the vendor pages it.

It imports nothing of the gateway but ``gateway.adapter``, the adapter
interface, and is found by the gateway through the entry point in its
``pyproject.toml``.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from gateway.adapter import (
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    OptionsModel,
    PoolStats,
    PrepareError,
    Row,
)
from pydantic import Field, HttpUrl, SecretStr

__all__ = ["FACTORY", "VendorRestAdapter", "VendorRestOperation", "VendorRestOptions"]


class VendorRestOptions(OptionsModel):
    """The backend block of ``type: vendorrest``."""

    base_url: HttpUrl = Field(description="the vendor API's root, e.g. https://vendor/api/v2")
    api_key: SecretStr | None = Field(default=None, description="sent as X-Api-Key (${ENV})")
    page_size: int = Field(default=100, ge=1, le=1000, description="rows asked per page")
    probe_path: str = Field(default="health", description="GET here answers when healthy")


class VendorRestOperation(OptionsModel):
    """A service's ``operation:`` block."""

    resource: str = Field(min_length=1, description="path under base_url, e.g. licences")
    query: dict[str, str] = Field(
        default_factory=dict, description="query parameters; {param} takes a request value"
    )
    max_rows: int = Field(default=1000, ge=1, le=100_000)


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    resource: str
    query: tuple[tuple[str, str], ...]
    max_rows: int

    def params(self, values: Mapping[str, object]) -> dict[str, str]:
        return {k: v.format_map({n: str(x) for n, x in values.items()}) for k, v in self.query}


class VendorRestAdapter:
    def __init__(self, name: str, options: VendorRestOptions, limits: BackendLimits) -> None:
        self.name = name
        self._options = options
        self._limits = limits
        self._slots = asyncio.Semaphore(limits.pool_size)
        self._in_use = 0
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    async def open(self) -> None:
        # httpx connects on first use: a vendor that is down does not stop the gateway
        headers = {}
        if self._options.api_key is not None:
            headers["X-Api-Key"] = self._options.api_key.get_secret_value()
        self._client = httpx.AsyncClient(
            base_url=str(self._options.base_url).rstrip("/") + "/",
            headers=headers,
            limits=httpx.Limits(max_connections=self._limits.pool_size),
            timeout=None,  # the whole call is bounded by query_timeout below
        )

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _get(self, path: str, params: Mapping[str, str | int]) -> httpx.Response:
        if self._closed or self._client is None:
            raise BackendUnavailable("adapter closed")
        try:
            return await self._client.get(path, params=params)
        except httpx.TransportError as exc:
            # the exception's text may hold the URL with the request's values: never shown
            raise BackendUnavailable(f"vendor not reachable ({type(exc).__name__})") from None

    async def _pages(self, req: PreparedRequest, values: Mapping[str, object]) -> list[Row]:
        rows: list[Row] = []
        page: int | None = 1
        query = req.params(values)
        while page is not None and len(rows) < req.max_rows:
            # the page size stays the same on every page: the vendor counts pages in it
            per_page = self._options.page_size
            resp = await self._get(req.resource, {**query, "page": page, "per_page": per_page})
            body = _json(resp)
            if resp.status_code >= 500:
                raise BackendError(f"vendor answered HTTP {resp.status_code}")
            if resp.status_code >= 400:
                # the vendor's message quotes what it was sent: only its code is passed on
                error = body.get("error") if isinstance(body, dict) else None
                code = error.get("code") if isinstance(error, dict) else None
                raise BackendRejected(str(code or resp.status_code), "refused by the vendor")
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise BackendBadResponse("vendor answer has no list of items")
            rows.extend(items[: req.max_rows - len(rows)])
            following = body.get("next_page")
            page = following if isinstance(following, int) else None
        return rows

    async def fetch(self, operation: Any, params: Mapping[str, object]) -> Sequence[Row]:
        req: PreparedRequest = operation
        try:
            await asyncio.wait_for(self._slots.acquire(), self._limits.acquire_timeout)
        except TimeoutError:
            raise BackendBusy("no free connection within acquire_timeout") from None
        self._in_use += 1
        try:
            async with asyncio.timeout(self._limits.query_timeout):
                return await self._pages(req, params)
        except TimeoutError:
            raise BackendTimeout(f"vendor took over {self._limits.query_timeout:g}s") from None
        finally:
            self._in_use -= 1
            self._slots.release()

    async def probe(self) -> None:
        resp = await self._get(self._options.probe_path, {})
        if resp.status_code >= 500:
            raise BackendUnavailable(f"vendor health answered HTTP {resp.status_code}")

    def pool_stats(self) -> PoolStats:
        size = self._limits.pool_size if self._client is not None else 0
        return PoolStats(size=size, in_use=self._in_use)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise BackendBadResponse("vendor answer is not JSON") from None


class VendorRestFactory:
    type_name: ClassVar[str] = "vendorrest"
    options_model: ClassVar[type[OptionsModel]] = VendorRestOptions
    operation_model: ClassVar[type[OptionsModel]] = VendorRestOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> PreparedRequest:
        op: VendorRestOperation = operation
        for key, text in op.query.items():
            for _, field_name, _, _ in string.Formatter().parse(text):
                if field_name is not None and field_name not in param_names:
                    raise PrepareError(
                        f"{{{field_name}}} is not a declared parameter", ("query", key)
                    )
        return PreparedRequest(op.resource.strip("/"), tuple(op.query.items()), op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> VendorRestAdapter:
        return VendorRestAdapter(name, options, limits)


FACTORY = VendorRestFactory()
