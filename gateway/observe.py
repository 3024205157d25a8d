"""Observation: the pipeline emits one :class:`CallRecord` per call; observers decide.

The stages never call the audit, metrics or logs themselves.  The pipeline
fills a record as it goes and hands it to the :class:`Hub` once the answer
is known: the durable observer (the audit) must accept it before the answer
is sent; the others (metrics, access log) see it afterwards and can not fail
the call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["CallRecord", "DurableObserver", "Hub", "Kind", "Observer"]

log = logging.getLogger("lc2_gateway.observe")

# What a record is of: a data or sandbox call, a refusal on a service's health route, a
# request that matched no route, or the gateway's own config reload.
Kind = Literal["data", "sandbox", "health", "unrouted", "reload"]


@dataclass(slots=True)
class CallRecord:
    request_id: str
    started: float  # unix time
    method: str
    path: str
    client_ip: str
    service: str = "-"
    kind: Kind = "data"
    sandbox: bool = False
    consumer: str | None = None
    office: str | None = None
    officer: str | None = None
    user_agent: str | None = None
    # raw query values as received; the audit applies each parameter's audit mode
    params: dict[str, str] = field(default_factory=dict)
    status: int = 0
    code: str = ""
    rows: int = 0
    error: str | None = None
    duration: float = 0.0
    backend_duration: float | None = None
    failed_fields: Sequence[str] = ()
    timings: dict[str, float] = field(default_factory=dict)


class DurableObserver(Protocol):
    async def commit(self, record: CallRecord) -> None:
        """Return once the record is durably stored; raise AuditUnavailable otherwise."""


class Observer(Protocol):
    def observe(self, record: CallRecord) -> None: ...


class Hub:
    def __init__(self, durable: DurableObserver, observers: Sequence[Observer] = ()) -> None:
        self.durable = durable
        self.observers = tuple(observers)

    async def commit(self, record: CallRecord) -> None:
        await self.durable.commit(record)

    def observe(self, record: CallRecord) -> None:
        for obs in self.observers:
            try:
                obs.observe(record)
            except Exception:  # an observer bug must not turn a served call into a 500
                log.exception("observer %s failed", type(obs).__name__)
