"""Prometheus metrics, fed by observation, never called from inside a stage.

Names follow Prometheus conventions: one ``lc2_gateway_`` prefix, base units
(seconds), ``_total`` for counters, and label values drawn only from the
config (service, backend names) or from small fixed sets (status, code), so
no caller can grow the series count.  Pool usage and the audit writer's state
are read at scrape time by a collector, costing nothing per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.adapter import Adapter
from gateway.config.runtime import Settings
from gateway.health import BackendHealth
from gateway.observe import CallRecord

if TYPE_CHECKING:
    from gateway.guard import BackendGuard
    from gateway.sharedstate import SharedState

__all__ = ["Metrics"]

PREFIX = "lc2_gateway"
# Request latency: a legacy lookup spans sub-millisecond (sandbox) to seconds.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Switch(Protocol):
    @property
    def active(self) -> bool: ...


class _Current(Protocol):
    @property
    def adapters(self) -> Mapping[str, Adapter]: ...

    @property
    def guards(self) -> Mapping[str, BackendGuard]: ...


AuditStatus = Callable[[], Mapping[str, Any]]  # AuditWriter.status


class _SharedStateCollector(Collector):
    """The shared state store's reachability and fail mode, read at each scrape."""

    def __init__(self, shared: SharedState) -> None:
        self._shared = shared

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self._shared
        yield GaugeMetricFamily(
            f"{PREFIX}_state_store_up", "1 while the shared state store answers", 1.0 * s.up
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_state_store_fail_closed",
            "1 if calls needing a quota decision are refused while the store is unreachable",
            1.0 * s.fail_closed,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_state_store_uncounted_calls",
            "Calls served without a quota decision while the store was unreachable (fail_open)",
            s.uncounted,
        )


class _ScrapeCollector(Collector):
    def __init__(self, current: Callable[[], _Current], audit: AuditStatus) -> None:
        self._current = current
        self._audit = audit

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gen = self._current()
        size = GaugeMetricFamily(
            f"{PREFIX}_backend_pool_connections",
            "Open connections in the backend pool",
            labels=["backend"],
        )
        used = GaugeMetricFamily(
            f"{PREFIX}_backend_pool_in_use",
            "Connections of the pool in use by a call",
            labels=["backend"],
        )
        active = GaugeMetricFamily(
            f"{PREFIX}_backend_calls_in_flight",
            "Calls inside the backend's bulkhead",
            labels=["backend"],
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_backend_calls_waiting",
            "Calls queued for a bulkhead slot",
            labels=["backend"],
        )
        retries = CounterMetricFamily(
            f"{PREFIX}_backend_retries",
            "Calls retried on a fresh connection",
            labels=["backend"],
        )
        for name, adapter in gen.adapters.items():
            stats = adapter.pool_stats()
            size.add_metric([name], stats.size)
            used.add_metric([name], stats.in_use)
        for name, guard in gen.guards.items():
            active.add_metric([name], guard.bulkhead.active)
            waiting.add_metric([name], guard.bulkhead.waiting)
            retries.add_metric([name], guard.retried)
        yield size
        yield used
        yield active
        yield waiting
        yield retries
        yield from _audit_families(self._audit())


_Family = GaugeMetricFamily | CounterMetricFamily


def _audit_families(audit: Mapping[str, Any]) -> Iterator[_Family]:
    yield GaugeMetricFamily(
        f"{PREFIX}_audit_queue_depth",
        "Audit records waiting for the writer",
        value=audit["queue"],
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_audit_up",
        "1 if the audit store can be written",
        value=1 if audit["status"] == "up" else 0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_audit_fail_closed",
        "1 if calls are refused while the audit store cannot be written",
        value=1 if audit["failClosed"] else 0,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_audit_unconfirmed",
        "Calls answered before their audit record was committed (fail-open)",
        value=audit["unconfirmed"],
    )
    yield CounterMetricFamily(
        f"{PREFIX}_audit_lost",
        "Audit records dropped: backlog full, or unwritten at shutdown (fail-open)",
        value=audit["lost"],
    )
    if audit["volumeFreeBytes"] is not None:  # an SQLite store: its volume is ours to watch
        yield GaugeMetricFamily(
            f"{PREFIX}_audit_volume_free_bytes",
            "Free space on the audit store's volume (SQLite), as the writer last saw it",
            value=audit["volumeFreeBytes"],
        )
    yield GaugeMetricFamily(
        f"{PREFIX}_audit_seal_ok",
        "1 if the last seal attempt had no error",
        value=1 if audit["sealError"] is None else 0,
    )
    # The chain label lets several workers writing one chain be summed: one of them seals.
    # Period and grace let an alert tell an hourly chain's missing seal within hours.
    per_chain: list[tuple[type[_Family], str, str, float | None]] = [
        (CounterMetricFamily, "segments_sealed", "Audit segments this process sealed",
         audit["sealed"]),
        (GaugeMetricFamily, "last_seal_timestamp_seconds",
         "Unix time this process last sealed a segment", audit["lastSealAt"]),
        (GaugeMetricFamily, "seal_period_seconds",
         "Length of an audit segment: 3600 (audit.seal_period: hour) or 86400 (day)",
         audit["sealPeriodSeconds"]),
        (GaugeMetricFamily, "seal_grace_seconds",
         "How long after its period ends a segment is sealed (audit.seal_grace)",
         audit["sealGraceSeconds"]),
    ]  # fmt: skip
    for kind, name, doc, value in per_chain:
        if value is None:  # never sealed: no sample rather than a made-up time
            continue
        family = kind(f"{PREFIX}_audit_{name}", doc, labels=["chain"])
        family.add_metric([audit["chain"]], value)
        yield family


class Metrics:
    def __init__(
        self, registry: CollectorRegistry, *, services: list[str], backends: list[str], version: str
    ) -> None:
        self.registry = registry
        # memory, CPU and file descriptors of this process, and the interpreter's
        # collector: the memory targets are watched here, not only in benchmarks
        # (the library's own instances: a new GCCollector would add a gc callback per registry)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Calls answered, by service, kind, HTTP status and gateway code",
            ["service", "kind", "status", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request to committed answer",
            ["service", "kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.backend_latency = Histogram(
            f"{PREFIX}_backend_duration_seconds",
            "Time spent in the backend call",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.mapping_failures = Counter(
            f"{PREFIX}_mapping_failures",
            "Legacy values a transform could not read (nulled)",
            ["service"],
            registry=registry,
        )
        self.backend_up = Gauge(
            f"{PREFIX}_backend_up",
            "1 if the last health probe succeeded",
            ["backend"],
            registry=registry,
        )
        self.backend_probe = Gauge(
            f"{PREFIX}_backend_probe_duration_seconds",
            "Latency of the last successful probe",
            ["backend"],
            registry=registry,
        )
        self.audit_records = Counter(
            f"{PREFIX}_audit_records",
            "Audit records committed",
            registry=registry,
        )
        self.audit_failures = Counter(
            f"{PREFIX}_audit_write_failures",
            "Audit batches that could not be written",
            registry=registry,
        )
        self.audit_write = Histogram(
            f"{PREFIX}_audit_write_duration_seconds",
            "Time to write and commit one audit batch",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.audit_batch = Histogram(
            f"{PREFIX}_audit_batch_size",
            "Records per audit commit",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=registry,
        )
        self.circuit = Gauge(
            f"{PREFIX}_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ["backend"],
            registry=registry,
        )
        self.circuit_changes = Counter(
            f"{PREFIX}_circuit_transitions",
            "Circuit breaker state changes",
            ["backend", "to"],
            registry=registry,
        )
        self.reload_ok = Gauge(
            f"{PREFIX}_config_last_reload_successful",
            "1 if the last reload was applied",
            registry=registry,
        )
        self.reload_time = Gauge(
            f"{PREFIX}_config_last_reload_timestamp_seconds",
            "Unix time of the last reload try",
            registry=registry,
        )
        self.maintenance = Gauge(
            f"{PREFIX}_maintenance",
            "1 while maintenance mode is on",
            registry=registry,
        )
        self.reload_ok.set(1)
        self.info = Info(f"{PREFIX}_build", "Gateway and config version", registry=registry)
        self.info.info({"config_version": version})
        # Children are created once: label lookups are not free on the hot path.
        self._latency_children: dict[tuple[str, str], Any] = {}
        self._request_children: dict[tuple[str, str, str, str], Any] = {}
        self._backend_children: dict[str, Any] = {}
        for b in backends:
            self.backend_up.labels(b).set(0)
            self.circuit.labels(b).set(0)
        for s in services:
            self.backend_latency.labels(s)

    def register_scrape(self, current: Callable[[], _Current], audit: AuditStatus) -> None:
        self.registry.register(_ScrapeCollector(current, audit))

    def on_circuit(self, backend: str, state: str) -> None:
        self.circuit.labels(backend).set({"closed": 0, "half_open": 1, "open": 2}[state])
        self.circuit_changes.labels(backend, state).inc()

    def on_reload(self, ok: bool) -> None:
        self.reload_ok.set(1 if ok else 0)
        self.reload_time.set(time.time())

    def on_generation(self, settings: Settings) -> None:
        self.info.info({"config_version": settings.version})
        for b in settings.backends:
            self.backend_up.labels(b)
            self.circuit.labels(b)

    def on_maintenance(self, switch: _Switch) -> None:
        self.maintenance.set_function(lambda: 1.0 if switch.active else 0.0)

    def on_shared_state(self, shared: SharedState) -> None:
        self.registry.register(_SharedStateCollector(shared))

    def observe(self, rec: CallRecord) -> None:
        key = (rec.service, rec.kind, str(rec.status), rec.code)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()
        lkey = (rec.service, rec.kind)
        hist = self._latency_children.get(lkey)
        if hist is None:
            hist = self._latency_children[lkey] = self.latency.labels(*lkey)
        hist.observe(rec.duration)
        if rec.backend_duration is not None:
            backend = self._backend_children.get(rec.service)
            if backend is None:
                backend = self._backend_children[rec.service] = self.backend_latency.labels(
                    rec.service
                )
            backend.observe(rec.backend_duration)
        if rec.failed_fields:
            self.mapping_failures.labels(rec.service).inc(len(rec.failed_fields))

    def on_health(self, backend: str, health: BackendHealth) -> None:
        self.backend_up.labels(backend).set(1 if health.status == "up" else 0)
        if health.latency is not None:
            self.backend_probe.labels(backend).set(health.latency)

    def on_audit_write(self, records: int, seconds: float, ok: bool) -> None:
        self.audit_write.observe(seconds)
        self.audit_batch.observe(records)
        if ok:
            self.audit_records.inc(records)
        else:
            self.audit_failures.inc()
