"""Who may call, what reaches the gateway, and what may leave it.

One module per concern, each small:

``network``   CIDR allow lists, trusted proxies, the caller's address
``lockout``   failed sign-ins per address and per username, lock-out windows
``tls``       the LC2 listener's TLS context, mutual TLS, certificate pins
``front``     the front door: the caller's address and the gateway-wide allow list, per call
``listener``  the listening socket: size limits, the request-head deadline, malformed requests
``headers``   security headers on every response
``redact``    citizen IDs and configured secrets out of logs and error bodies
``apikey``    API keys: generation and hashing
``settings``  the frozen, compiled form of the ``security:`` block
``errors``    the request-stage errors these raise (codes 105-108)

This package imports nothing from its own modules at import time, so any of
them can be imported from the config and auth layers without a cycle.
"""

from __future__ import annotations

__all__: list[str] = []
