"""Execute stage: the only stage that does I/O against a backend (through its guard)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.adapter import Row
from gateway.plan import Plan
from gateway.sandbox import sandbox_filter

__all__ = ["execute"]


async def execute(plan: Plan) -> Sequence[Row]:
    service = plan.service
    if plan.backend is None:
        return sandbox_filter(service.sandbox_rows, service.config.sandbox.match, plan.params)
    return await plan.backend.fetch(service.operation, plan.params)
