"""The vendor REST adapter: the gateway's adapter contract, then what is its own (paging)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from gateway.adapter import BackendLimits, BackendRejected, PrepareError
from gateway.testing.adapter_contract import AdapterContract, Call, ContractBackend

from lc2_adapter_vendorrest import FACTORY, VendorRestOperation, VendorRestOptions
from vendor_server import LICENCES, OWNER, VendorServer, running_vendor_server

LICENCES_OF = {"resource": "licences", "query": {"owner": "{personalId}"}}


@pytest.fixture(scope="module")
def vendor() -> Iterator[VendorServer]:
    with running_vendor_server() as srv:
        yield srv


class TestVendorRestContract(AdapterContract):
    @pytest.fixture
    def contract_backend(self, vendor: VendorServer) -> ContractBackend:
        return ContractBackend(
            factory=FACTORY,
            options={"base_url": vendor.url, "page_size": 2},
            unreachable={"base_url": "http://127.0.0.1:1"},
            rows=Call(LICENCES_OF, {"personalId": OWNER}),
            slow=Call({"resource": "slow"}),
            # the vendor's error document quotes the owner it refuses
            refused=Call(LICENCES_OF, {"personalId": "31006-00123"}),
            refused_error=BackendRejected,
        )


def test_pages_are_followed_up_to_max_rows(vendor: VendorServer) -> None:
    async def fetch(max_rows: int) -> tuple[list[str], int]:
        options = VendorRestOptions.model_validate({"base_url": vendor.url, "page_size": 2})
        op = FACTORY.prepare(
            options,
            VendorRestOperation.model_validate({**LICENCES_OF, "max_rows": max_rows}),
            ["personalId"],
        )
        adapter = FACTORY.create("vendor", options, BackendLimits(2, 1.0, 5.0))
        await adapter.open()
        before = vendor.pages_served
        try:
            rows = await adapter.fetch(op, {"personalId": OWNER})
        finally:
            await adapter.close()
        return [str(r["licenceNo"]) for r in rows], vendor.pages_served - before

    every = [lic["licenceNo"] for lic in LICENCES]
    assert asyncio.run(fetch(100)) == (every, 3)  # 2 + 2 + 1
    assert asyncio.run(fetch(3)) == (every[:3], 2)  # the third page is never asked for


def test_an_undeclared_placeholder_is_refused_at_load() -> None:
    options = VendorRestOptions.model_validate({"base_url": "http://127.0.0.1:1"})
    op = VendorRestOperation.model_validate({"resource": "x", "query": {"a": "{nope}"}})
    with pytest.raises(PrepareError, match="nope") as err:
        FACTORY.prepare(options, op, ["personalId"])
    assert err.value.path == ("query", "a")
