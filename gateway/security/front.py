"""The front door: who is calling, from where, before the pipeline runs.

:class:`FrontDoor` lives as long as the LC2 application (the process) and
hands each call the process's lock-out counters; the rules it applies come
from the generation each call runs on.  Per call it resolves
the caller's address (trusted proxies only), decides the gateway-wide allow
list and hands the pipeline a :class:`Client`: the address, the rules, the
lock-out state and the connection (for a TLS client certificate, read only
when a consumer pins one).

Paths are matched only in their canonical form.  ``//``, ``.`` and ``..``
segments and percent-encoded ``/``, ``\\``, ``.`` or NUL never reach a
service: the router sees the decoded path, and ``/api/v1/fisher%2Fsandbox``
would otherwise be the sandbox under another name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.security.lockout import Lockouts
from gateway.security.redact import REDACTOR
from gateway.security.settings import SecuritySettings
from gateway.security.tls import peer_fingerprint

__all__ = ["Client", "FrontDoor", "canonical_path"]

_ENCODED = re.compile(r"%(?:2[fFeE]|5[cC]|00)")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


def canonical_path(request: web.BaseRequest) -> bool:
    raw = request.rel_url.raw_path
    if "//" in raw or ("/." in raw and _DOT_SEGMENT.search(raw)) or "\\" in raw:
        return False
    return raw == request.path or _ENCODED.search(raw) is None


@dataclass(frozen=True, slots=True)
class Client:
    address: str  # the caller: the peer, or the right-most untrusted X-Forwarded-For hop
    allowed: bool  # by the gateway-wide allow list
    security: SecuritySettings
    lockouts: Lockouts
    transport: Any = None

    def cert_sha256(self) -> str | None:
        return peer_fingerprint(self.transport)


class _LockoutMetrics(Collector):
    def __init__(self, lockouts: Lockouts) -> None:
        self._lockouts = lockouts

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        started = CounterMetricFamily(
            "lc2_gateway_auth_lockouts",
            "Lock-outs begun after repeated failed sign-ins",
            labels=["scope"],
        )
        locked = GaugeMetricFamily(
            "lc2_gateway_auth_locked", "Addresses and usernames locked out now", labels=["scope"]
        )
        now = self._lockouts.locked()
        for scope, count in self._lockouts.started.items():
            started.add_metric([scope], count)
            locked.add_metric([scope], now[scope])
        yield started
        yield locked


class FrontDoor:
    def __init__(self, lockouts: Lockouts) -> None:
        self.lockouts = lockouts
        self._security: SecuritySettings | None = None

    def register_metrics(self, registry: CollectorRegistry) -> None:
        registry.register(_LockoutMetrics(self.lockouts))

    def admit(self, request: web.BaseRequest, security: SecuritySettings) -> Client:
        if security is not self._security:  # the first call on a new config generation
            self._security = security
            REDACTOR.add_secrets(security.secrets)
        peer = request.remote or ""
        if security.trusted_proxies is None:
            address = peer
        else:
            address = security.client_address(peer, request.headers.getall("X-Forwarded-For", ()))
        allow = security.allow_from
        return Client(
            address, allow is None or address in allow, security, self.lockouts, request.transport
        )
