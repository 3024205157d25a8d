"""The ``security:`` block and ``listen.tls``, compiled once into frozen settings.

Networks are parsed, the TLS context is built (its files read) and the
lock-out policy fixed here, at config load; a call only reads the result.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.models import AuthFailuresConfig, GatewayConfig
from gateway.security.network import Networks, client_address
from gateway.security.tls import server_context

__all__ = ["DEFAULT_SECURITY", "SecuritySettings", "build_security"]

Problem = Callable[[tuple[str | int, ...], str], None]


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    allow_from: Networks | None = None  # None: any address may call
    trusted_proxies: Networks | None = None  # None: X-Forwarded-For is never read
    api_key_header: str = "X-API-Key"
    api_keys_in_use: bool = False  # some consumer has API keys: read the header at all
    lockout: AuthFailuresConfig = field(default_factory=AuthFailuresConfig)  # as written
    tls: ssl.SSLContext | None = field(default=None, compare=False)
    mutual_tls: bool = False
    # values the config took from the environment for secret-named keys; redacted from logs
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        return client_address(peer, forwarded_for, self.trusted_proxies)


DEFAULT_SECURITY = SecuritySettings()


def _networks(cidrs: list[str]) -> Networks | None:
    return Networks(cidrs) if cidrs else None


def build_security(
    cfg: GatewayConfig, base_dir: Path, problem: Problem, secrets: frozenset[str]
) -> SecuritySettings:
    sc = cfg.security
    tls_cfg = cfg.listen.tls
    context: ssl.SSLContext | None = None
    if tls_cfg is not None:

        def rel(p: Path) -> Path:
            return p if p.is_absolute() else base_dir / p

        files = {"cert_file": tls_cfg.cert_file, "key_file": tls_cfg.key_file}
        if tls_cfg.client_ca_file is not None:
            files["client_ca_file"] = tls_cfg.client_ca_file
        missing = [k for k, p in files.items() if not rel(p).is_file()]
        for key in missing:
            problem(("listen", "tls", key), f"no such file: {rel(files[key])}")
        if not missing:
            try:
                context = server_context(
                    rel(tls_cfg.cert_file),
                    rel(tls_cfg.key_file),
                    key_password=tls_cfg.key_password,
                    client_ca_file=rel(tls_cfg.client_ca_file) if tls_cfg.client_ca_file else None,
                    min_version=tls_cfg.min_version,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                # an OpenSSL reason (PEM_lib, KEY_VALUES_MISMATCH, bad decrypt), never the password
                reason = getattr(exc, "reason", None) or type(exc).__name__
                problem(("listen", "tls"), f"cannot load the certificate, key or CA: {reason}")
    return SecuritySettings(
        allow_from=_networks(sc.allow_from),
        trusted_proxies=_networks(sc.trusted_proxies),
        api_key_header=sc.api_key_header,
        api_keys_in_use=any(c.api_keys for c in cfg.consumers.values()),
        lockout=sc.auth_failures,
        tls=context,
        mutual_tls=tls_cfg is not None and tls_cfg.client_ca_file is not None,
        secrets=secrets,
    )
