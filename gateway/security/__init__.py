"""Who may call, what reaches the gateway, and what may leave it.

One module per concern, each small:

``network``   CIDR allow lists, trusted proxies, the caller's address
``lockout``   failed sign-ins counted before the hash, in a store all workers share
``admin``     the admin listener's guard: Host, Origin and the reload token
``files``     state files created 0600, and a check for ones readable by others
``tls``       the LC2 listener's TLS context, mutual TLS, certificate pins
``front``     the front door: the caller's address and the gateway-wide allow list, per call
``listener``  the listening socket: connection caps, size limits, head deadline, bad requests
``headers``   security headers on every response
``redact``    citizen IDs, secrets and bound values out of logs, the audit, error bodies
``apikey``    API keys: generation and hashing
``settings``  the frozen, compiled form of the ``security:`` block
``errors``    the request-stage errors these raise (codes 105-108)

This package imports nothing from its own modules at import time, so any of
them can be imported from the config and auth layers without a cycle.
"""

from __future__ import annotations

__all__: list[str] = []
