"""The SOAP adapter against a real SOAP stack (spyne), and against hostile answers.

The happy paths, faults, WS-Security and SOAP 1.2 run against the spyne
service of :mod:`tests.soap_server`; what spyne would never send (broken XML,
XXE, entity bombs, huge or slow answers, proxies' error pages) comes from
the raw upstream of :mod:`tests.http_upstream` standing at the endpoint of
the same WSDL.
"""

from __future__ import annotations

import asyncio
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.soap import FACTORY, PreparedCall, SoapAdapter, SoapOperation, SoapOptions
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
    DescribesResult,
    PrepareError,
)
from gateway.app import build_app, build_runtime
from gateway.config.loader import ConfigError
from tests.http_upstream import (
    Upstream,
    bomb_xml,
    running_http_upstream,
    xxe_xml,
)
from tests.soap_server import (
    FAULT_BAD_REQUEST,
    FAULT_NO_RECORD,
    FAULT_SERVER,
    RPC_WSDL,
    SoapServer,
    running_soap_server,
)
from tests.support import (
    PEOPLE,
    MakeClient,
    audit_rows,
    base_config,
    lc2_headers,
    settings_from,
)

ROOT = Path(__file__).resolve().parent.parent
WSDL = ROOT / "config" / "vessels" / "vessel-licence.wsdl"
USERS = {"gw": "s3cret-pass"}
OWNER = PEOPLE[0]["pid"]
PID_PARAM = {"personalId": {"type": "citizen_id"}}
PARAMS = ("personalId", "personalId__dashed", "personalId__spaced", "personalId__padded")
LICENCES = {
    "name": "GetVesselLicences",
    "request": {"ownerId": "{personalId}"},
    "rows": "GetVesselLicencesResponse/GetVesselLicencesResult/Licence",
}
ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="urn:x"><e:Body>'
    "<t:GetVesselLicencesResponse><t:GetVesselLicencesResult>{rows}"
    "</t:GetVesselLicencesResult></t:GetVesselLicencesResponse></e:Body></e:Envelope>"
)


@pytest.fixture(scope="module")
def soap11() -> Iterator[SoapServer]:
    with running_soap_server(users=USERS) as srv:
        yield srv


@pytest.fixture(scope="module")
def soap12() -> Iterator[SoapServer]:
    with running_soap_server(soap12=True, users=USERS) as srv:
        yield srv


@pytest.fixture(scope="module")
def raw_upstream() -> Iterator[Upstream]:
    with running_http_upstream() as up:
        yield up


@pytest.fixture
def hostile(raw_upstream: Upstream) -> Iterator[Upstream]:
    """The raw upstream, reset after each test that scripts its answer."""
    yield raw_upstream
    raw_upstream.soap_reply, raw_upstream.soap_status, raw_upstream.delay = b"", 200, 0.0
    raw_upstream.soap_requests.clear()


def options(**extra: Any) -> SoapOptions:
    cfg: dict[str, Any] = {"wsdl": WSDL, "wsse": {"username": "gw", "password": USERS["gw"]}}
    cfg.update(extra)
    return SoapOptions.model_validate(cfg)


def prepared(opts: SoapOptions, **op: Any) -> PreparedCall:
    return FACTORY.prepare(opts, SoapOperation.model_validate({**LICENCES, **op}), PARAMS)


@asynccontextmanager
async def opened(
    opts: SoapOptions, *, pool: int = 2, acquire: float = 0.5, query_timeout: float = 2.0
) -> AsyncIterator[SoapAdapter]:
    adapter = FACTORY.create("vessels", opts, BackendLimits(pool, acquire, query_timeout))
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


# --- against spyne ------------------------------------------------------------------


async def test_rows_by_element_path_soap11(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url)
    async with opened(opts) as adapter:
        rows = await adapter.fetch(prepared(opts), {"personalId": OWNER})
        assert [r["licenceNo"] for r in rows] == ["PL-2566-000123", "PL-2566-000124"]
        first = rows[0]
        assert first["owner.firstName"] == "สมชาย" and first["owner.lastName"] == "ใจดี"
        assert first["vessel.grossTonnage"] == "28" and first["issueDate"] == "2023-04-01"
        assert await adapter.fetch(prepared(opts), {"personalId": PEOPLE[1]["pid"]}) == []
        assert adapter.pool_stats().in_use == 0


async def test_result_columns_and_row_path_from_the_wsdl_types(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url)
    async with opened(opts) as adapter:
        assert isinstance(adapter, DescribesResult)
        calls = soap11.calls
        columns = await adapter.result_columns(prepared(opts))
        rows = await adapter.fetch(prepared(opts), {"personalId": OWNER})
        assert columns is not None and set(rows[0]) <= set(columns)  # what an answer has
        assert {"licenceNo", "owner.firstName", "vessel.grossTonnage"} <= set(columns)
        assert soap11.calls == calls + 1  # the WSDL answered; the service was called once
        wrong = prepared(opts, rows="GetVesselLicencesResponse/GetVesselLicencesResult/License")
        with pytest.raises(PrepareError, match=r"no element <License>.*it has: Licence") as err:
            await adapter.result_columns(wrong)
        assert err.value.path == ("rows",)
        with pytest.raises(PrepareError, match="is <GetVesselLicencesResponse>, not <Reply>"):
            await adapter.result_columns(prepared(opts, rows="Reply/Licence"))


async def test_soap12_wsdl_from_url_digest_token(soap12: SoapServer) -> None:
    before = soap12.wsdl_gets
    opts = options(
        wsdl=soap12.wsdl_url, wsse={"username": "gw", "password": "s3cret-pass", "digest": True}
    )
    async with opened(opts) as adapter:
        call = prepared(opts)
        for _ in range(3):
            rows = await adapter.fetch(call, {"personalId": OWNER})
            assert len(rows) == 2
        await adapter.probe()
    assert soap12.wsdl_gets == before + 1  # loaded once, at open; never per call


async def test_soap12_fault_codes_match_soap11_rules(soap12: SoapServer) -> None:
    opts = options(wsdl=soap12.wsdl_url)
    call = prepared(opts, faults=[{"code": "Client.NoRecord", "action": "not_found"}])
    async with opened(opts) as adapter:
        with pytest.raises(BackendNoRecord) as err:
            await adapter.fetch(call, {"personalId": FAULT_NO_RECORD})
    assert err.value.extra["faultCode"] == "Sender.NoRecord"


@pytest.mark.parametrize(
    ("rule", "owner", "error", "status"),
    [
        ({"code": "NoRecord", "action": "not_found"}, FAULT_NO_RECORD, BackendNoRecord, 404),
        (
            {"match": "not registered", "action": "bad_request"},
            FAULT_BAD_REQUEST,
            BackendRejected,
            400,
        ),
        ({"code": "Client", "action": "error"}, FAULT_NO_RECORD, BackendFault, 502),
        (None, FAULT_SERVER, BackendFault, 502),
    ],
)
async def test_fault_actions(
    soap11: SoapServer,
    rule: dict[str, str] | None,
    owner: str,
    error: type[BackendFault],
    status: int,
) -> None:
    opts = options(endpoint=soap11.url)
    call = prepared(opts, faults=[rule] if rule else [])
    async with opened(opts) as adapter:
        with pytest.raises(error) as err:
            await adapter.fetch(call, {"personalId": owner})
    assert type(err.value) is error and err.value.status == status
    body = err.value.body()
    assert body["faultCode"] and body["faultString"]
    assert owner not in str(body)  # the service quotes the ID back: redacted


async def test_fault_mapped_to_empty(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url)
    call = prepared(opts, faults=[{"code": "Server.Database", "action": "empty"}])
    async with opened(opts) as adapter:
        assert await adapter.fetch(call, {"personalId": FAULT_SERVER}) == []


@pytest.mark.parametrize(
    "wsse",
    [
        None,
        {"username": "gw", "password": "wrong"},
        {"username": "gw", "password": "wrong", "digest": True},
        {"username": "nobody", "password": "s3cret-pass"},
    ],
)
async def test_username_token_rejected(soap11: SoapServer, wsse: dict[str, Any] | None) -> None:
    opts = options(endpoint=soap11.url, wsse=wsse)
    async with opened(opts) as adapter:
        with pytest.raises(BackendFault) as err:
            await adapter.fetch(prepared(opts), {"personalId": OWNER})
    assert err.value.extra["faultCode"] == "FailedAuthentication"
    assert "wrong" not in str(err.value.body())


async def test_username_token_digest_accepted(soap11: SoapServer) -> None:
    opts = options(
        endpoint=soap11.url, wsse={"username": "gw", "password": "s3cret-pass", "digest": True}
    )
    async with opened(opts) as adapter:
        assert len(await adapter.fetch(prepared(opts), {"personalId": OWNER})) == 2


async def test_slow_answer_times_out(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url)
    soap11.delay = 2.0
    try:
        async with opened(opts, query_timeout=0.3) as adapter:
            started = time.monotonic()
            with pytest.raises(BackendTimeout):
                await adapter.fetch(prepared(opts), {"personalId": OWNER})
            assert time.monotonic() - started < 1.5
    finally:
        soap11.delay = 0.0


async def test_pool_size_bounds_concurrency(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url)
    soap11.delay = 0.5
    try:
        async with opened(opts, pool=1, acquire=0.1) as adapter:
            call = prepared(opts)
            results = await asyncio.gather(
                adapter.fetch(call, {"personalId": OWNER}),
                adapter.fetch(call, {"personalId": OWNER}),
                return_exceptions=True,
            )
    finally:
        soap11.delay = 0.0
    assert sum(isinstance(r, BackendBusy) for r in results) == 1
    assert sum(isinstance(r, list) and len(r) == 2 for r in results) == 1


async def test_probe_operation_and_reachability(soap11: SoapServer) -> None:
    opts = options(endpoint=soap11.url, probe={"operation": "Ping"})
    async with opened(opts) as adapter:
        await adapter.probe()
    async with opened(options(endpoint=soap11.url)) as adapter:
        await adapter.probe()  # spyne answers HEAD with 405: reachable all the same


async def test_wsdl_unreachable_at_start_then_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("adapters.soap._WSDL_RETRY_AFTER", 0.0)
    with running_soap_server(users=USERS) as srv:
        port = srv.url
    opts = options(wsdl=port + "?wsdl")
    async with opened(opts) as adapter:  # the gateway starts with the backend down
        with pytest.raises(BackendUnavailable, match="cannot load the WSDL"):
            await adapter.fetch(prepared(opts), {"personalId": OWNER})
        with pytest.raises(BackendUnavailable):
            await adapter.probe()
        with running_soap_server(users=USERS, port=int(port.rsplit(":", 1)[1].strip("/"))):
            assert len(await adapter.fetch(prepared(opts), {"personalId": OWNER})) == 2


async def test_connection_refused() -> None:
    opts = options(endpoint="http://127.0.0.1:1/")
    async with opened(opts) as adapter:
        with pytest.raises(BackendUnavailable, match="cannot connect"):
            await adapter.fetch(prepared(opts), {"personalId": OWNER})
        with pytest.raises(BackendUnavailable):
            await adapter.probe()


# --- hostile answers at the same WSDL's endpoint ---------------------------------------


async def _fetch_from(up: Upstream, reply: bytes, **limits: Any) -> Any:
    up.soap_reply = reply
    opts = options(endpoint=up.url + "/soap", **limits)
    async with opened(opts) as adapter:
        return await adapter.fetch(prepared(opts), {"personalId": OWNER})


async def test_canned_answer_and_request_shape(hostile: Upstream) -> None:
    row = (
        "<t:Licence><t:licenceNo>X-1</t:licenceNo><t:status xsi:nil='true' "
        "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'/></t:Licence>"
    )
    rows = await _fetch_from(hostile, ENVELOPE.format(rows=row).encode())
    assert rows == [{"licenceNo": "X-1", "status": None}]
    sent = hostile.soap_requests[-1]
    assert b"GetVesselLicences" in sent and OWNER.encode() in sent
    assert b"UsernameToken" in sent


@pytest.mark.parametrize(
    "reply",
    [
        b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body>",
        b"this is not XML at all",
        b"<html><body>Gateway page</body></html>",
        b"",
    ],
)
async def test_malformed_answer_is_308(hostile: Upstream, reply: bytes) -> None:
    with pytest.raises(BackendBadResponse):
        await _fetch_from(hostile, reply)


async def test_wrong_response_element_is_308(hostile: Upstream) -> None:
    other = ENVELOPE.replace("GetVesselLicencesResponse", "PingResponse").format(rows="")
    with pytest.raises(BackendBadResponse, match="no <GetVesselLicencesResponse>"):
        await _fetch_from(hostile, other.encode())


async def test_proxy_error_pages_keep_their_status(hostile: Upstream) -> None:
    hostile.soap_status = 503
    with pytest.raises(BackendBusy):
        await _fetch_from(hostile, b"<html>Service Unavailable</html>")
    hostile.soap_status = 502
    with pytest.raises(BackendError, match="HTTP 502"):
        await _fetch_from(hostile, b"<html>Bad Gateway</html>")


async def test_answer_over_the_size_cap_is_308(hostile: Upstream) -> None:
    row = "<t:Licence><t:licenceNo>" + "x" * 1000 + "</t:licenceNo></t:Licence>"
    big = ENVELOPE.format(rows=row * 200).encode()
    with pytest.raises(BackendBadResponse, match="max_response_bytes"):
        await _fetch_from(hostile, big, max_response_bytes=64 * 1024)


async def test_entity_bomb_refused_fast_with_bounded_memory(hostile: Upstream) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(BackendBadResponse, match=r"entit|DTD"):
            await _fetch_from(hostile, bomb_xml(soap=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 2.0
    assert peak < 20 * 1024 * 1024  # 10**9 "lol"s would be gigabytes


async def test_xxe_reads_no_file_through_the_gateway(
    hostile: Upstream,
    tmp_path: Path,
    aiohttp_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9c")
    hostile.soap_reply = xxe_xml(str(secret), soap=True)
    backend = {
        "type": "soap",
        "wsdl": str(WSDL),
        "endpoint": hostile.url + "/soap",
        "query_timeout": 2,
        "health": {"interval": 60, "timeout": 1},
    }
    service = {
        "backend": "vessels",
        "path": "fisher",
        "params": {"personalId": {"type": "citizen_id"}},
        "operation": {
            "name": "GetFisher",
            "request": {"personalId": "{personalId}"},
            "rows": "GetFisherResponse/GetFisherResult/FisherRecord",
        },
        "output": {"personalId": "PID"},
    }
    settings = settings_from(base_config(tmp_path, {"vessels": backend}, {"fisher": service}))
    client = await aiohttp_client(build_app(build_runtime(settings)))
    resp = await client.get("/api/v1/fisher", params={"personalId": OWNER}, headers=lc2_headers())
    text = await resp.text()
    assert resp.status == 502, text
    assert (await resp.json())["responseCode"] == "308"
    await client.close()
    assert "TOP-SECRET" not in text
    assert "TOP-SECRET" not in caplog.text
    assert all("TOP-SECRET" not in str(row) for row in audit_rows(settings.audit.path))


# --- rpc/literal: zeep builds it from the WSDL; spyne can not serve rpc ------------------


async def test_rpc_literal_request_and_answer(hostile: Upstream, tmp_path: Path) -> None:
    wsdl = tmp_path / "rpc.wsdl"
    wsdl.write_text(RPC_WSDL)
    hostile.soap_reply = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
        b'<r:FindVesselResponse xmlns:r="urn:rpc-vessels"><vesselName>Srisamut</vesselName>'
        b"</r:FindVesselResponse></e:Body></e:Envelope>"
    )
    opts = SoapOptions.model_validate({"wsdl": wsdl, "endpoint": hostile.url + "/soap"})
    op = SoapOperation.model_validate(
        {"name": "FindVessel", "request": {"ownerId": "{personalId}"}, "rows": "FindVesselResponse"}
    )
    call = FACTORY.prepare(opts, op, PARAMS)
    async with opened(opts) as adapter:
        rows = await adapter.fetch(call, {"personalId": OWNER})
    assert rows == [{"vesselName": "Srisamut"}]
    sent = hostile.soap_requests[-1]
    assert b"FindVessel" in sent and b"<ownerId>" + OWNER.encode() + b"</ownerId>" in sent


# --- config check: the WSDL file is read, never the network ---------------------------


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"name": "GetVessels"}, "not in the WSDL (it has: GetFisher, GetVesselLicences, Ping)"),
        ({"request": {"owner": "{personalId}"}}, "unexpected keyword argument 'owner'"),
        ({"request": {"ownerId": "{pid}"}}, "{pid} is not a declared parameter"),
        ({"rows": "a//b"}, "empty segment"),
    ],
)
def test_prepare_checks_against_the_wsdl(op: dict[str, Any], message: str) -> None:
    with pytest.raises(PrepareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepared(options(), **op)


def test_config_errors_name_the_yaml_line(tmp_path: Path) -> None:
    backend = {
        "type": "soap",
        "wsdl": "missing.wsdl",
        "wsse": {"username": "u", "password": "literal"},
    }
    service = {"backend": "b", "params": PID_PARAM, "operation": LICENCES, "output": {"x": "no"}}
    with pytest.raises(ConfigError) as err:
        settings_from(base_config(tmp_path, {"b": backend}, {"s": service}), base_dir=tmp_path)
    text = str(err.value)
    assert "backends.b.wsse.password: a secret must come from the environment" in text
    assert "does not exist" in text


def test_wsdl_url_is_not_fetched_at_check_time(tmp_path: Path) -> None:
    backend = {"type": "soap", "wsdl": "http://127.0.0.1:1/never?wsdl"}
    service = {"backend": "b", "params": PID_PARAM, "operation": LICENCES, "output": {"x": "no"}}
    settings = settings_from(base_config(tmp_path, {"b": backend}, {"s": service}))
    assert settings.backends["b"].type == "soap"


# --- TLS -----------------------------------------------------------------------------


async def test_tls_endpoint(
    tls_upstream: tuple[Upstream, Path], caplog: pytest.LogCaptureFixture
) -> None:
    up, cert = tls_upstream
    row = "<t:Licence><t:licenceNo>TLS-1</t:licenceNo></t:Licence>"
    up.soap_reply = ENVELOPE.format(rows=row).encode()
    try:
        with pytest.raises(BackendTLSError, match="certificate verify failed"):
            await _fetch_from(up, up.soap_reply)
        assert (await _fetch_from(up, up.soap_reply, ca_file=cert))[0]["licenceNo"] == "TLS-1"
        with caplog.at_level(logging.WARNING):
            rows = await _fetch_from(up, up.soap_reply, ca_file=cert, legacy_ciphers=True)
        assert rows[0]["licenceNo"] == "TLS-1"
        assert "legacy TLS (TLS 1.0/1.1, weak ciphers) is ALLOWED" in caplog.text
    finally:
        up.soap_reply = b""
