"""The audit writer's state in /health and /metrics, from a real gateway and a real store.

The store is made to fail as in test_audit_diskfull.py: it lives on a 2 MiB
tmpfs private to the gateway's mount namespace, and filling that filesystem
makes the next commit fail with SQLITE_FULL.  Sealing is checked on a store
that already holds a closed segment from an earlier day, clean or tampered with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.audit import AuditWriter
from gateway.config.build import load_settings
from tests.audit_support import (
    Served,
    at,
    call,
    fill_disk,
    pid_for,
    served_on_small_disk,
    serving_config,
    settings,
    sql,
)
from tests.support import PEOPLE, lc2_headers

API = "/api/v1/fisher?personalId=" + PEOPLE[0]["pid"]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class Gateway:
    """One served gateway: its LC2 port, its admin port, and what they say."""

    def __init__(self, served: Served, port: int, admin: int) -> None:
        self.served, self.port, self.admin = served, port, admin

    def call(self) -> int:
        rid = f"obs-{uuid.uuid4().hex[:8]}"
        return _get(f"http://127.0.0.1:{self.port}{API}", lc2_headers(**{"X-Request-Id": rid}))[0]

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = _get(f"http://127.0.0.1:{self.admin}/health")
        return status, json.loads(body)

    def public_health(self) -> tuple[int, str]:
        return _get(f"http://127.0.0.1:{self.port}/health")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        _, text = _get(f"http://127.0.0.1:{self.admin}/metrics")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def until(self, what: str, done: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"{what}: {self.served.output()}"
            time.sleep(0.05)


def _value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return metrics[(name, ())]


@contextlib.contextmanager
def _on_small_disk(tmp_path: Path, **audit: Any) -> Iterator[tuple[Gateway, Path]]:
    """A gateway whose audit store is on its private tmpfs; yields it and that directory."""
    with served_on_small_disk(tmp_path, **audit) as (served, port, store):
        yield Gateway(served, port, served.admin), store


def _assert_public_health_says_a_word(gw: Gateway, status: int) -> None:
    code, raw = gw.public_health()
    assert code == status
    assert json.loads(raw)["audit"] == {"status": "down", "error": "unavailable"}
    # the LC2 network learns neither the driver's text, nor paths, nor the writer's counts
    for secret in ("full", "sqlite", "small", "unconfirmed", "failClosed", "chain", "gw1"):
        assert secret not in raw, (secret, raw)


def test_fail_closed_store_failure_is_down(tmp_path: Path) -> None:
    with _on_small_disk(tmp_path) as (gw, store):
        assert gw.call() == 200
        assert gw.health()[1]["status"] == "up"
        filler = fill_disk(store)
        statuses: list[int] = []

        def refused() -> bool:  # a few commits still fit in pages SQLite already holds
            statuses.append(gw.call())
            assert len(statuses) < 50, "the gateway kept answering with a full disk"
            return statuses[-1] == 503

        gw.until("a refused call", refused)

        code, health = gw.health()
        assert code == 503 and health["status"] == "down"
        audit = health["audit"]
        assert audit["status"] == "down" and "full" in str(audit["error"]).lower()
        assert audit["failClosed"] is True and audit["store"] == "sqlite"
        assert audit["chain"] == "gw1" and audit["unconfirmed"] == 0 and audit["lost"] == 0
        _assert_public_health_says_a_word(gw, 503)

        m = gw.metrics()
        assert _value(m, "lc2_gateway_audit_up") == 0
        assert _value(m, "lc2_gateway_audit_fail_closed") == 1
        assert _value(m, "lc2_gateway_audit_unconfirmed_total") == 0
        assert _value(m, "lc2_gateway_audit_lost_total") == 0
        assert _value(m, "lc2_gateway_audit_seal_ok") == 1
        assert m[("lc2_gateway_audit_segments_sealed_total", (("chain", "gw1"),))] == 0
        assert not [k for k in m if k[0] == "lc2_gateway_audit_last_seal_timestamp_seconds"]

        filler.unlink()
        gw.until("health back up", lambda: gw.health()[0] == 200)
        assert _value(gw.metrics(), "lc2_gateway_audit_up") == 1


def test_fail_open_store_failure_is_degraded_and_counted(tmp_path: Path) -> None:
    with _on_small_disk(tmp_path, fail_closed=False, queue_max=10) as (gw, store):
        assert gw.call() == 200
        filler = fill_disk(store)
        answers: list[int] = []

        def noticed() -> bool:
            answers.append(gw.call())
            return bool(gw.health()[1]["audit"]["status"] == "down")

        gw.until("the writer noticing the full disk", noticed)
        assert set(answers) == {200}, "fail-open must keep answering"

        code, health = gw.health()
        assert code == 200 and health["status"] == "degraded"
        audit = health["audit"]
        assert audit["failClosed"] is False and "full" in str(audit["error"]).lower()
        assert audit["unconfirmed"] >= 1
        _assert_public_health_says_a_word(gw, 200)

        before = gw.metrics()
        assert _value(before, "lc2_gateway_audit_up") == 0
        assert _value(before, "lc2_gateway_audit_fail_closed") == 0
        assert _value(before, "lc2_gateway_audit_unconfirmed_total") == audit["unconfirmed"]
        # every call answered from now on is unconfirmed; past queue_max (10) records are lost
        assert [gw.call() for _ in range(25)] == [200] * 25
        after = gw.metrics()
        unconfirmed = _value(after, "lc2_gateway_audit_unconfirmed_total")
        assert unconfirmed == _value(before, "lc2_gateway_audit_unconfirmed_total") + 25
        assert _value(after, "lc2_gateway_audit_lost_total") >= 1
        assert _value(after, "lc2_gateway_audit_queue_depth") >= 1

        filler.unlink()  # the backlog is written, the counts stay: they happened
        gw.until("backlog written", lambda: gw.health()[1]["audit"]["queue"] == 0)
        code, health = gw.health()
        assert code == 200 and health["status"] == "up"
        final = gw.metrics()
        assert _value(final, "lc2_gateway_audit_up") == 1
        assert _value(final, "lc2_gateway_audit_unconfirmed_total") == unconfirmed


# -- sealing --------------------------------------------------------------------------------


def _served_with_closed_segment(tmp_path: Path, tamper: bool) -> Gateway:
    """A store holding one closed, unsealed day (optionally tampered with), then served."""
    config, port, admin = serving_config(tmp_path, seal_interval=3600)

    async def write() -> None:
        s = settings(config)
        writer = AuditWriter(replace(s.audit, seal_seed=None), s.services)
        await writer.start()
        try:
            for k in range(5):
                await writer.commit(call(at("2025-03-03", "09:00") + k * 60, pid=pid_for(k)))
        finally:
            await writer.close()

    asyncio.run(write())
    if tamper:
        sql(
            tmp_path / "audit.sqlite",
            "UPDATE audit_log SET officer = ? WHERE seq = 3",
            ["3100000000001"],
        )
    served = Served(config, admin)
    served.wait_ready()
    return Gateway(served, port, admin)


def test_sealing_shows_in_metrics(tmp_path: Path) -> None:
    gw = _served_with_closed_segment(tmp_path, tamper=False)
    try:
        gw.until("the segment sealed", lambda: gw.health()[1]["audit"]["sealed"] == 1)
        code, health = gw.health()
        assert code == 200 and health["status"] == "up"
        audit = health["audit"]
        assert audit["sealError"] is None and audit["lastSealAt"] is not None
        m = gw.metrics()
        assert _value(m, "lc2_gateway_audit_seal_ok") == 1
        assert m[("lc2_gateway_audit_segments_sealed_total", (("chain", "gw1"),))] == 1
        last = m[("lc2_gateway_audit_last_seal_timestamp_seconds", (("chain", "gw1"),))]
        assert last == pytest.approx(audit["lastSealAt"]) and abs(time.time() - last) < 60
        # what the hourly seal-overdue alert reads
        assert m[("lc2_gateway_audit_seal_period_seconds", (("chain", "gw1"),))] == 86400
        grace = m[("lc2_gateway_audit_seal_grace_seconds", (("chain", "gw1"),))]
        assert grace == audit["sealGraceSeconds"] > 0
    finally:
        assert gw.served.stop() == 0, gw.served.output()


def test_a_failing_seal_degrades_health(tmp_path: Path) -> None:
    gw = _served_with_closed_segment(tmp_path, tamper=True)
    try:
        gw.until("the seal refused", lambda: gw.health()[1]["audit"]["sealError"] is not None)
        code, health = gw.health()
        assert code == 200 and health["status"] == "degraded"
        audit = health["audit"]
        assert audit["status"] == "up" and "verification" in audit["sealError"]
        assert audit["sealed"] == 0 and audit["lastSealAt"] is None
        code, raw = gw.public_health()
        assert code == 200 and json.loads(raw)["status"] == "degraded"
        assert json.loads(raw)["audit"] == {"status": "up", "error": None}
        assert "verification" not in raw and "seq" not in raw
        m = gw.metrics()
        assert _value(m, "lc2_gateway_audit_seal_ok") == 0
        assert _value(m, "lc2_gateway_audit_up") == 1
        assert m[("lc2_gateway_audit_segments_sealed_total", (("chain", "gw1"),))] == 0
        assert not [k for k in m if k[0] == "lc2_gateway_audit_last_seal_timestamp_seconds"]
    finally:
        assert gw.served.stop() == 0, gw.served.output()


def test_an_hourly_chain_says_so_in_its_status(tmp_path: Path) -> None:
    config, _, _ = serving_config(tmp_path, seal_period="hour", seal_grace=120)
    s = load_settings(config)
    audit = AuditWriter(s.audit, s.services).status()
    assert audit["sealPeriodSeconds"] == 3600 and audit["sealGraceSeconds"] == 120
