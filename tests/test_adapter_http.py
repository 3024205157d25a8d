"""The legacy HTTP adapter against a real aiohttp upstream on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.http import FACTORY, HttpAdapter, HttpOperation, HttpOptions, PreparedRequest
from gateway.adapter import (
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendFault,
    BackendLimits,
    BackendNoRecord,
    BackendRejected,
    BackendTimeout,
    BackendTLSError,
    BackendUnavailable,
    PrepareError,
)
from tests.http_upstream import (
    NOT_REGISTERED,
    REJECTED,
    Upstream,
    running_http_upstream,
)
from tests.support import PEOPLE

PARAMS = ("personalId", "personalId__dashed", "personalId__spaced", "personalId__padded", "name")
PID = PEOPLE[0]["pid"]
FISHER_JSON = {
    "path": "/fisher",
    "query": {"pid": "{personalId}"},
    "rows": "data",
    "error_document": {"code": "resultCode", "message": "resultMsg", "ok": ["000"]},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_http_upstream() as up:
        yield up


@pytest.fixture
def echo(upstream: Upstream) -> Iterator[Upstream]:
    yield upstream
    upstream.requests.clear()
    upstream.delay = 0.0


def options(url: str, **extra: Any) -> HttpOptions:
    return HttpOptions.model_validate({"base_url": url, **extra})


def prepared(opts: HttpOptions, op: dict[str, Any]) -> PreparedRequest:
    return FACTORY.prepare(opts, HttpOperation.model_validate(op), PARAMS)


@asynccontextmanager
async def opened(
    opts: HttpOptions, *, pool: int = 2, acquire: float = 0.5, query_timeout: float = 2.0
) -> AsyncIterator[HttpAdapter]:
    adapter = FACTORY.create("legacy", opts, BackendLimits(pool, acquire, query_timeout))
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


async def fetch(url: str, op: dict[str, Any], params: dict[str, object], **extra: Any) -> Any:
    opts = options(url, **extra)
    async with opened(opts) as adapter:
        return await adapter.fetch(prepared(opts, op), params)


# --- answers mapped into rows ---------------------------------------------------------


async def test_json_rows_and_error_document(upstream: Upstream) -> None:
    op = {
        **FISHER_JSON,
        "faults": [{"code": "404", "action": "empty"}, {"code": "400", "action": "bad_request"}],
    }
    rows = await fetch(upstream.url, op, {"personalId": PID})
    assert rows == [{k: PEOPLE[0][k] for k in ("PID", "FULLNAME", "SEX", "BIRTH_DATE", "MOO")}]
    assert await fetch(upstream.url, op, {"personalId": NOT_REGISTERED}) == []
    with pytest.raises(BackendRejected) as err:
        await fetch(upstream.url, op, {"personalId": REJECTED})
    assert err.value.extra["faultCode"] == "400" and REJECTED not in str(err.value.body())


async def test_error_document_default_is_a_fault(upstream: Upstream) -> None:
    with pytest.raises(BackendFault) as err:
        await fetch(upstream.url, FISHER_JSON, {"personalId": NOT_REGISTERED})
    assert err.value.status == 502 and err.value.extra["faultString"] == "ไม่พบข้อมูล <parameter>"


async def test_xml_rows_with_templated_path(upstream: Upstream) -> None:
    op = {"path": "/fisher/{personalId}.xml", "rows": "response/fisher"}
    rows = await fetch(upstream.url, op, {"personalId": PEOPLE[2]["pid"]})
    assert rows[0]["FULLNAME"] == PEOPLE[2]["FULLNAME"] and rows[0]["MOO"] == ""
    assert await fetch(upstream.url, op, {"personalId": "1"}) == []
    with pytest.raises(BackendBadResponse, match="no <reply>"):
        await fetch(upstream.url, {**op, "rows": "reply/fisher"}, {"personalId": PID})


@pytest.mark.parametrize(
    "op",
    [
        {
            "method": "POST",
            "path": "/fisher/search",
            "json": {"query": {"pid": "{personalId}"}},
            "rows": "result/items",
        },
        {"method": "POST", "path": "/fisher/form", "form": {"pid": "{personalId}"}},
        {
            "method": "POST",
            "path": "/fisher/xml",
            "xml": "<q><pid>{personalId}</pid></q>",
            "rows": "rows/row",
        },
    ],
)
async def test_post_bodies(upstream: Upstream, op: dict[str, Any]) -> None:
    rows = await fetch(upstream.url, op, {"personalId": PEOPLE[1]["pid"]})
    assert len(rows) == 1 and rows[0]["SEX"] == "1"


async def test_legacy_tis620_xml_needs_response_encoding(upstream: Upstream) -> None:
    op = {
        "path": "/pipo/movements",
        "query": {"ownerPid": "{personalId}"},
        "rows": "PIPO/MOVEMENTS/MOVE",
    }
    rows = await fetch(upstream.url, op, {"personalId": PID}, response_encoding="cp874")
    assert [r["DIRECTION"] for r in rows] == ["OUT", "IN"]
    assert rows[0]["VESSEL_NAME"] == "ศรีสมุทร 1" and rows[0]["@SEQ"] == "1"
    with pytest.raises(BackendBadResponse, match="not well-formed"):
        await fetch(upstream.url, op, {"personalId": PID})  # TIS-620 bytes read as UTF-8


# --- what is sent ---------------------------------------------------------------------


async def test_values_are_encoded_where_they_go(echo: Upstream) -> None:
    nasty = "a/b?c#d&e=f <x> \"q\" 's' ก"
    op = {
        "method": "POST",
        "path": "/echo/{name}/{name}",
        "query": {"n": "{name}", "many": ["{name}", "fixed"], "none": "{personalId}"},
        "headers": {"X-Owner": "owner {personalId__dashed}"},
        "xml": '<q a="{name}">{name}</q>',
        "rows": "echo",
    }
    rows = await fetch(
        echo.url,
        op,
        {"name": nasty, "personalId": None, "personalId__dashed": "1-2"},
        headers={"X-Fixed": "yes"},
        basic_auth={"username": "gw", "password": "p@ss"},
    )
    seen = echo.requests[-1]
    assert seen["path"] == f"/echo/{nasty}/{nasty}"  # one segment each, decoded back intact
    assert seen["query"] == [["n", nasty], ["many", nasty], ["many", "fixed"]]
    assert seen["headers"] == {"X-Owner": "owner 1-2", "X-Fixed": "yes"}
    assert seen["auth"] == "Basic Z3c6cEBzcw=="
    assert seen["body"] == (
        '<q a="a/b?c#d&amp;e=f &lt;x&gt; &quot;q&quot; &apos;s&apos; ก">'
        "a/b?c#d&amp;e=f &lt;x&gt; &quot;q&quot; &apos;s&apos; ก</q>"
    )
    assert rows[0]["method"] == "POST"


async def test_dot_segments_can_not_climb_out(echo: Upstream) -> None:
    await fetch(echo.url + "/echo/base", {"path": "/{name}/x", "rows": "echo"}, {"name": ".."})
    assert echo.requests[-1]["path"] == "/echo/base/../x"  # ".." arrived as data, not a hop


async def test_bearer_token_and_json_body(echo: Upstream) -> None:
    op = {
        "method": "POST",
        "path": "/echo/j",
        "json": {"id": "{personalId}", "n": 1},
        "rows": "echo",
    }
    await fetch(echo.url, op, {"personalId": PID}, bearer_token="tok-123")
    seen = echo.requests[-1]
    assert seen["auth"] == "Bearer tok-123" and seen["content_type"] == "application/json"
    assert seen["body"] == f'{{"id":"{PID}","n":1}}'


async def test_header_injection_is_refused(echo: Upstream) -> None:
    op = {"path": "/echo/h", "headers": {"X-Name": "{name}"}, "rows": "echo"}
    with pytest.raises(BackendRejected):
        await fetch(echo.url, op, {"name": "a\r\nX-Evil: 1"})


# --- statuses, limits, hostile answers ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "mapped", "error"),
    [
        (404, None, BackendError),
        (500, None, BackendError),
        (302, None, BackendError),
        (401, None, BackendError),
        (429, None, BackendBusy),
        (503, None, BackendBusy),
        (504, None, BackendTimeout),
        (400, "bad_request", BackendRejected),
        (410, "not_found", BackendNoRecord),
        (503, "unavailable", BackendUnavailable),
        (500, "busy", BackendBusy),
    ],
)
async def test_status_mapping(
    upstream: Upstream, code: int, mapped: str | None, error: type[Exception]
) -> None:
    op: dict[str, Any] = {"path": f"/status/{code}"}
    if mapped:
        op["status"] = {code: mapped}
    with pytest.raises(error) as err:
        await fetch(upstream.url, op, {})
    assert type(err.value) is error


async def test_status_mapped_to_empty_or_parsed(upstream: Upstream) -> None:
    assert await fetch(upstream.url, {"path": "/status/404", "status": {404: "empty"}}, {}) == []
    with pytest.raises(BackendBadResponse):  # "status 404" is not JSON
        await fetch(
            upstream.url, {"path": "/status/404", "status": {404: "parse"}, "response": "json"}, {}
        )


async def test_size_cap_holds_while_streaming(upstream: Upstream) -> None:
    started = time.monotonic()
    with pytest.raises(BackendBadResponse, match="max_response_bytes"):
        await fetch(
            upstream.url,
            {"path": "/big", "query": {"size": "50000000"}},
            {},
            max_response_bytes=256 * 1024,
        )
    assert time.monotonic() - started < 5  # refused at the cap, not after 50 MB
    rows = await fetch(
        upstream.url, {"path": "/big", "query": {"size": "100000"}, "rows": "data"}, {}
    )
    assert len(str(rows[0]["."])) > 100000


async def test_timeout(echo: Upstream) -> None:
    echo.delay = 3.0
    opts = options(echo.url)
    async with opened(opts, query_timeout=0.3) as adapter:
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            await adapter.fetch(prepared(opts, {"path": "/slow"}), {})
        assert time.monotonic() - started < 1.5


async def test_pool_size_bounds_concurrency(echo: Upstream) -> None:
    echo.delay = 0.5
    opts = options(echo.url)
    async with opened(opts, pool=1, acquire=0.1) as adapter:
        call = prepared(opts, {"path": "/slow", "rows": "data"})
        results = await asyncio.gather(
            adapter.fetch(call, {}), adapter.fetch(call, {}), return_exceptions=True
        )
    assert sorted(type(r).__name__ for r in results) == ["BackendBusy", "list"]


async def test_connection_refused() -> None:
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        await fetch("http://127.0.0.1:1", {"path": "/x"}, {})


@pytest.mark.parametrize("kind", ["malformed", "json-broken", "bomb", "json-deep"])
async def test_unreadable_answers_are_308(upstream: Upstream, kind: str) -> None:
    response = "json" if kind.startswith("json") else "xml"
    with pytest.raises(BackendBadResponse):
        await fetch(upstream.url, {"path": f"/raw/{kind}", "response": response}, {})


async def test_xxe_reads_no_file(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-51c2")
    with pytest.raises(BackendBadResponse) as err:
        await fetch(
            upstream.url, {"path": "/raw/xxe", "query": {"file": str(secret)}, "rows": "r/v"}, {}
        )
    assert "TOP-SECRET" not in str(err.value.body()) and "TOP-SECRET" not in caplog.text


# --- health -----------------------------------------------------------------------------


async def test_probe(upstream: Upstream) -> None:
    async with opened(options(upstream.url)) as adapter:
        await adapter.probe()  # HEAD on the base URL: any answer means reachable
    strict = options(upstream.url, probe={"method": "GET", "path": "/status/500", "status": [200]})
    async with opened(strict) as adapter:
        with pytest.raises(BackendError, match="HTTP 500"):
            await adapter.probe()
    async with opened(options("http://127.0.0.1:1")) as adapter:
        with pytest.raises(BackendUnavailable):
            await adapter.probe()


# --- TLS --------------------------------------------------------------------------------


async def test_tls_verification(
    tls_upstream: tuple[Upstream, Path], caplog: pytest.LogCaptureFixture
) -> None:
    up, cert = tls_upstream
    op = {"path": "/fisher", "query": {"pid": "{personalId}"}, "rows": "data"}
    with pytest.raises(BackendTLSError, match="certificate verify failed"):
        await fetch(up.url, op, {"personalId": PID})
    assert len(await fetch(up.url, op, {"personalId": PID}, ca_file=cert)) == 1
    with caplog.at_level(logging.WARNING):
        assert len(await fetch(up.url, op, {"personalId": PID}, insecure_skip_verify=True)) == 1
    assert "CERTIFICATE VERIFICATION IS OFF" in caplog.text


# --- config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"path": "/x/{nope}"}, "{nope} is not a declared parameter"),
        ({"path": "/x/{personalId"}, "unbalanced '{'"),
        ({"json": {"a": 1}}, "a body needs method: POST"),
        ({"method": "POST", "json": {}, "form": {}}, "at most one of json, form or xml"),
        ({"faults": [{"code": "1", "action": "empty"}]}, "faults need error_document"),
        ({"status": {99: "empty"}}, "not an HTTP status"),
        ({"faults": [], "error_document": {"code": "c", "ok": []}}, "at least 1 item"),
    ],
)
def test_operation_problems(op: dict[str, Any], message: str) -> None:
    with pytest.raises((PrepareError, ValueError), match=message.replace("{", r"\{")):
        prepared(options("http://127.0.0.1:1"), op)


def test_option_problems() -> None:
    with pytest.raises(ValueError, match="not a valid HTTP header name"):
        options("http://x", headers={"Bad Header": "1"})
    with pytest.raises(ValueError, match="unknown encoding"):
        options("http://x", response_encoding="klingon")
    with pytest.raises(ValueError, match="basic_auth or bearer_token"):
        options("http://x", bearer_token="t", basic_auth={"username": "u", "password": "p"})
    with pytest.raises(ValueError, match="client_key_file needs client_cert_file"):
        options("http://x", client_key_file="k.pem")
    with pytest.raises(PrepareError, match="ca_file"):
        prepared(options("https://x", ca_file="/nonexistent/ca.pem"), {})
