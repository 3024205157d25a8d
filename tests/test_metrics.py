"""Metrics.observe: each call counted once in every family it belongs to, children cached."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.metrics import Metrics
from gateway.observe import CallRecord


def _call(service: str, backend: float | None) -> CallRecord:
    return CallRecord(
        "r",
        0.0,
        "GET",
        "/",
        "127.0.0.1",
        service=service,
        status=200,
        code="000",
        duration=0.004,
        backend_duration=backend,
    )


def test_backend_time_is_observed_per_service() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, services=["a", "b"], backends=["db"], version="1")
    for rec in (_call("a", 0.002), _call("a", 0.003), _call("b", 0.001), _call("b", None)):
        metrics.observe(rec)

    def value(name: str, service: str) -> float | None:
        return registry.get_sample_value(name, {"service": service})

    assert value("lc2_gateway_backend_duration_seconds_count", "a") == 2
    assert value("lc2_gateway_backend_duration_seconds_sum", "a") == 0.005
    assert value("lc2_gateway_backend_duration_seconds_count", "b") == 1
    total = "lc2_gateway_requests_total"
    labels = {"service": "b", "kind": "data", "status": "200", "code": "000"}
    assert registry.get_sample_value(total, labels) == 2
