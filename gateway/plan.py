"""Plan stage: may this caller have this service now, and from where is it answered.

Grants are checked first, then quotas (which count the call).  A sandbox
call is planned without a backend at all, so it can not reach one even by
mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config.runtime import Service
from gateway.errors import Forbidden
from gateway.guard import BackendGuard
from gateway.quota import QuotaStore
from gateway.request import Caller

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    service: Service
    params: Mapping[str, object]
    backend: BackendGuard | None  # None: answered from sandbox rows


async def make_plan(
    service: Service,
    caller: Caller,
    params: Mapping[str, object],
    *,
    sandbox: bool,
    guards: Mapping[str, BackendGuard],
    quotas: QuotaStore,
) -> Plan:
    consumer = caller.consumer
    if not consumer.may_call(service.name):
        raise Forbidden(f"consumer {consumer.name!r} has no grant for service {service.name!r}")
    if not consumer.may_act_for(caller.office):
        raise Forbidden(f"consumer {consumer.name!r} may not act for office {caller.office}")
    if quotas.active:
        await quotas.check(
            service.name,
            sandbox,
            {"officer": caller.officer, "office": caller.office, "consumer": consumer.name},
        )
    return Plan(service, params, None if sandbox else guards[service.backend])
