"""What every adapter must do, as a pytest suite an adapter package runs against its backend.

Subclass :class:`AdapterContract` in a module pytest collects (the class name
must start with ``Test``) and give it a ``contract_backend`` fixture that
describes a live backend: the factory, the backend's options as YAML would
give them, and three calls (one answering rows, one slow, one the backend
refuses).  Add :class:`ReadOnlyContract` when the backend can write, with a
``contract_writes`` fixture.  Every check goes through the factory's own
option and operation models, exactly as the gateway's config loader does::

    from gateway.testing.adapter_contract import AdapterContract, Call, ContractBackend

    class TestVendorContract(AdapterContract):
        @pytest.fixture
        def contract_backend(self, vendor_server) -> ContractBackend:
            return ContractBackend(factory=FACTORY, options={"base_url": vendor_server.url}, ...)

The tests drive the adapter with ``asyncio.run``, so no pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from gateway.adapter import (
    Adapter,
    AdapterFactory,
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    OptionsModel,
    PoolStats,
)
from gateway.errors import GatewayError

__all__ = ["AdapterContract", "Call", "ContractBackend", "ReadOnlyContract", "WriteCheck"]

# The codes an adapter may answer with (gateway/errors.py, "3xx backend").
DOCUMENTED_CODES = frozenset({"301", "302", "303", "304", "305", "306", "307", "308", "309"})


@dataclass(frozen=True)
class Call:
    """A service's ``operation:`` block as YAML gives it, and the values bound to it."""

    operation: Mapping[str, Any]
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractBackend:
    factory: AdapterFactory
    options: Mapping[str, Any]
    """The backend block (without ``type`` and the common limits) of a live backend."""
    unreachable: Mapping[str, Any]
    """The options of a backend that is not there (a closed loopback port)."""
    rows: Call
    """Answers at least two rows."""
    slow: Call
    """Takes several seconds unless cancelled."""
    refused: Call
    """The backend refuses it with a message that would quote a bound value."""
    refused_error: type[GatewayError] = BackendError
    still_running: Callable[[], Awaitable[int]] | None = None
    """How many slow calls the backend is still working on, where it can tell."""


@dataclass(frozen=True)
class WriteCheck:
    call: Call
    """A write the backend would accept were the adapter not read-only."""
    written: Callable[[], Awaitable[int]]
    """How many rows that write left behind (must stay 0)."""


def _prepare(backend: ContractBackend, call: Call, **override: Any) -> Any:
    factory = backend.factory
    options = factory.options_model.model_validate(dict(backend.options))
    operation = factory.operation_model.model_validate({**call.operation, **override})
    return factory.prepare(options, operation, tuple(call.params))


@asynccontextmanager
async def _opened(
    backend: ContractBackend, limits: BackendLimits, *, reachable: bool = True
) -> AsyncIterator[Adapter]:
    factory = backend.factory
    raw = backend.options if reachable else backend.unreachable
    adapter = factory.create("contract", factory.options_model.model_validate(dict(raw)), limits)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


async def _until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


def _everything_said(err: BaseException) -> str:
    """All an error would put in an answer, a log line or the audit."""
    parts = [str(err), repr(err)]
    if isinstance(err, GatewayError):
        parts += [repr(err.body()), repr(err.extra), repr(err.detail)]
    return "\n".join(parts)


class AdapterContract:
    """The contract of :mod:`gateway.adapter`, one test per promise."""

    limits: ClassVar[BackendLimits] = BackendLimits(
        pool_size=2, acquire_timeout=2.0, query_timeout=3.0
    )
    timeout: ClassVar[float] = 0.5
    """The query_timeout of the timeout checks; bounds are 10 times it."""

    @pytest.fixture
    def contract_backend(self) -> ContractBackend:
        raise NotImplementedError("define a contract_backend fixture in the subclass")

    # --- declaration ----------------------------------------------------------------------

    def test_factory_declares_frozen_strict_models(self, contract_backend: ContractBackend) -> None:
        factory = contract_backend.factory
        assert isinstance(factory.type_name, str) and factory.type_name
        assert issubclass(factory.options_model, OptionsModel)
        assert issubclass(factory.operation_model, OptionsModel)
        with pytest.raises(ValidationError):
            factory.options_model.model_validate({**contract_backend.options, "no_such_option": 1})
        assert "max_rows" in factory.operation_model.model_fields

    # --- rows -----------------------------------------------------------------------------

    def test_fetch_answers_rows_of_column_names(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            async with _opened(contract_backend, self.limits) as adapter:
                assert isinstance(adapter, Adapter)
                op = _prepare(contract_backend, contract_backend.rows)
                rows = await adapter.fetch(op, contract_backend.rows.params)
                assert len(rows) >= 2, "the rows call must answer at least two rows"
                assert all(isinstance(k, str) for row in rows for k in row)
                assert adapter.pool_stats().in_use == 0

        asyncio.run(check())

    def test_max_rows_caps_the_answer(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            async with _opened(contract_backend, self.limits) as adapter:
                op = _prepare(contract_backend, contract_backend.rows, max_rows=1)
                assert len(await adapter.fetch(op, contract_backend.rows.params)) == 1

        asyncio.run(check())

    # --- health ---------------------------------------------------------------------------

    def test_probe_reports_health(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            async with _opened(contract_backend, self.limits) as adapter:
                await adapter.probe()
                stats = adapter.pool_stats()
                assert isinstance(stats, PoolStats) and stats.in_use == 0
                assert stats.size <= self.limits.pool_size

        asyncio.run(check())

    def test_unreachable_backend_is_unavailable(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            limits = BackendLimits(pool_size=2, acquire_timeout=1.0, query_timeout=self.timeout)
            # open() connects lazily: a backend that is down must not stop the gateway
            async with _opened(contract_backend, limits, reachable=False) as adapter:
                started = time.monotonic()
                with pytest.raises(BackendUnavailable):
                    await adapter.fetch(
                        _prepare(contract_backend, contract_backend.rows),
                        contract_backend.rows.params,
                    )
                with pytest.raises(BackendUnavailable):
                    await adapter.probe()
                assert time.monotonic() - started < 10 * self.timeout
                assert adapter.pool_stats().in_use == 0

        asyncio.run(check())

    # --- timeouts and a full pool -------------------------------------------------------------

    def test_timeout_cancels_the_call(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            limits = BackendLimits(pool_size=1, acquire_timeout=2.0, query_timeout=self.timeout)
            async with _opened(contract_backend, limits) as adapter:
                slow = _prepare(contract_backend, contract_backend.slow)
                started = time.monotonic()
                with pytest.raises(BackendTimeout):
                    await adapter.fetch(slow, contract_backend.slow.params)
                assert time.monotonic() - started < 10 * self.timeout
                # the only slot of the pool is free again at once
                rows = _prepare(contract_backend, contract_backend.rows)
                assert len(await adapter.fetch(rows, contract_backend.rows.params)) >= 2
                assert adapter.pool_stats().in_use == 0
                if contract_backend.still_running is not None:
                    running = contract_backend.still_running
                    deadline = time.monotonic() + 10 * self.timeout
                    while await running():
                        assert time.monotonic() < deadline, "the backend still runs the call"
                        await asyncio.sleep(0.05)

        asyncio.run(check())

    def test_full_pool_is_busy_within_acquire_timeout(
        self, contract_backend: ContractBackend
    ) -> None:
        async def check() -> None:
            limits = BackendLimits(pool_size=1, acquire_timeout=0.3, query_timeout=self.timeout)
            async with _opened(contract_backend, limits) as adapter:
                slow = asyncio.create_task(
                    adapter.fetch(
                        _prepare(contract_backend, contract_backend.slow),
                        contract_backend.slow.params,
                    )
                )
                await _until(lambda: adapter.pool_stats().in_use == 1)
                with pytest.raises(BackendBusy):
                    await adapter.fetch(
                        _prepare(contract_backend, contract_backend.rows),
                        contract_backend.rows.params,
                    )
                with pytest.raises(BackendTimeout):
                    await slow

        asyncio.run(check())

    # --- errors ---------------------------------------------------------------------------

    def test_refusal_is_a_documented_error_without_bound_values(
        self, contract_backend: ContractBackend
    ) -> None:
        async def check() -> None:
            async with _opened(contract_backend, self.limits) as adapter:
                call = contract_backend.refused
                with pytest.raises(GatewayError) as err:
                    await adapter.fetch(_prepare(contract_backend, call), call.params)
                assert isinstance(err.value, contract_backend.refused_error), err.value
                assert err.value.code in DOCUMENTED_CODES
                said = _everything_said(err.value)
                for value in call.params.values():
                    assert str(value) not in said, "a bound value leaked into the error"
                # the driver's exception is not chained: its text would carry the value
                chained = err.value.__cause__ or (
                    None if err.value.__suppress_context__ else err.value.__context__
                )
                assert chained is None, f"chained to {type(chained).__name__}"
                assert adapter.pool_stats().in_use == 0

        asyncio.run(check())

    # --- closing --------------------------------------------------------------------------

    def test_close_is_clean_and_final(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            factory = contract_backend.factory
            options = factory.options_model.model_validate(dict(contract_backend.options))
            await factory.create("contract", options, self.limits).close()  # never opened
            adapter = factory.create("contract", options, self.limits)
            await adapter.open()
            await adapter.probe()
            await adapter.close()
            await adapter.close()  # twice is harmless
            assert adapter.pool_stats() == PoolStats(size=0, in_use=0)
            with pytest.raises(BackendUnavailable):
                await adapter.fetch(
                    _prepare(contract_backend, contract_backend.rows),
                    contract_backend.rows.params,
                )

        asyncio.run(check())

    def test_close_ends_a_call_in_flight(self, contract_backend: ContractBackend) -> None:
        async def check() -> None:
            factory = contract_backend.factory
            options = factory.options_model.model_validate(dict(contract_backend.options))
            limits = BackendLimits(pool_size=1, acquire_timeout=1.0, query_timeout=self.timeout)
            adapter = factory.create("contract", options, limits)
            await adapter.open()
            slow = asyncio.create_task(
                adapter.fetch(
                    _prepare(contract_backend, contract_backend.slow),
                    contract_backend.slow.params,
                )
            )
            await _until(lambda: adapter.pool_stats().in_use == 1)
            started = time.monotonic()
            await adapter.close()
            with pytest.raises((BackendTimeout, BackendUnavailable)):
                await asyncio.wait_for(slow, 10 * self.timeout)
            assert time.monotonic() - started < 10 * self.timeout

        asyncio.run(check())


class ReadOnlyContract:
    """For backends that can write: ``read_only`` (the default) refuses every write."""

    limits: ClassVar[BackendLimits] = AdapterContract.limits

    @pytest.fixture
    def contract_writes(self) -> WriteCheck:
        raise NotImplementedError("define a contract_writes fixture in the subclass")

    def test_read_only_refuses_writes(
        self, contract_backend: ContractBackend, contract_writes: WriteCheck
    ) -> None:
        async def check() -> None:
            assert (
                contract_backend.factory.options_model.model_validate(
                    dict(contract_backend.options)
                )
                .model_dump()
                .get("read_only", True)
            ), "the contract runs on the default read_only"
            async with _opened(contract_backend, self.limits) as adapter:
                call = contract_writes.call
                with pytest.raises(GatewayError) as err:
                    await adapter.fetch(_prepare(contract_backend, call), call.params)
                assert err.value.code in DOCUMENTED_CODES
                assert await contract_writes.written() == 0
                rows = _prepare(contract_backend, contract_backend.rows)
                assert len(await adapter.fetch(rows, contract_backend.rows.params)) >= 2

        asyncio.run(check())
