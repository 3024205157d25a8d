"""Who may call: consumers (credentials checked, grants and field policies compiled), and
the status page's users."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from gateway.auth import Consumer, check_hash_format
from gateway.config.loader import Path_
from gateway.config.models import ConsumerConfig, GatewayConfig
from gateway.config.problems import Problems
from gateway.normalise import Mapper
from gateway.policy import PolicyConfigError, compile_policy
from gateway.security.apikey import check_key_hash
from gateway.security.network import Networks
from gateway.security.tls import normalise_fingerprint

__all__ = ["build_consumers", "check_status_users", "with_policies"]

T = TypeVar("T")


def build_consumers(
    cfg: GatewayConfig, problems: Problems, declared: frozenset[str]
) -> dict[str, Consumer]:
    consumers: dict[str, Consumer] = {}
    usernames: set[str] = set()
    for cname, cc in cfg.consumers.items():
        if cc.username in usernames:
            problems.add(("consumers", cname, "username"), "username used by another consumer")
        usernames.add(cc.username)
        for i, s in enumerate(cc.services):
            if s != "*" and s not in declared:
                problems.add(("consumers", cname, "services", i), f"no service named {s!r}")
        consumers[cname] = _consumer(cname, cc, cfg, problems, declared)
    return consumers


def check_status_users(cfg: GatewayConfig, problems: Problems) -> None:
    for user, h in cfg.admin.status_users.items():
        try:
            check_hash_format(h)
        except ValueError as exc:
            problems.add(("admin", "status_users", user), str(exc))


def _consumer(
    cname: str,
    cc: ConsumerConfig,
    cfg: GatewayConfig,
    problems: Problems,
    services: frozenset[str],
) -> Consumer:
    at: Path_ = ("consumers", cname)
    if cc.password_hash is None:
        hashes = []
    else:
        hashes = [cc.password_hash] if isinstance(cc.password_hash, str) else cc.password_hash
    for i, h in enumerate(hashes):
        try:
            check_hash_format(h)
        except ValueError as exc:
            where = (*at, "password_hash")
            problems.add(where if isinstance(cc.password_hash, str) else (*where, i), str(exc))
    digests = _checked(cc.api_keys, check_key_hash, (*at, "api_keys"), problems)
    pins = _checked(
        cc.client_cert_sha256, normalise_fingerprint, (*at, "client_cert_sha256"), problems
    )
    tls = cfg.listen.tls
    if pins and (tls is None or tls.client_ca_file is None):
        problems.add(
            (*at, "client_cert_sha256"),
            "pinned certificates need mutual TLS: set listen.tls.client_ca_file",
        )
    for svc in cc.fields:
        if svc not in services:
            problems.add((*at, "fields", svc), f"no service named {svc!r}")
    return Consumer(
        cname,
        cc.username,
        tuple(hashes),
        frozenset(cc.services),
        frozenset(cc.offices),
        api_key_hashes=frozenset(digests),
        allow_from=Networks(cc.allow_from) if cc.allow_from else None,
        cert_sha256=frozenset(pins),
    )


def with_policies(
    consumer: Consumer, cc: ConsumerConfig, mappers: Mapping[str, Mapper], problems: Problems
) -> Consumer:
    policies = {}
    for sname, fp in cc.fields.items():
        mapper = mappers.get(sname)
        if mapper is None:
            continue  # reported with the service, or above
        try:
            policies[sname] = compile_policy(
                mapper,
                allow=fp.allow,
                mask=fp.mask,
                path=("consumers", consumer.name, "fields", sname),
            )
        except PolicyConfigError as exc:
            problems.add(exc.path, str(exc))
    return replace(consumer, policies=policies) if policies else consumer


def _checked(values: list[str], check: Callable[[str], T], at: Path_, problems: Problems) -> set[T]:
    """Each value as its check gives it back; a refused one is a problem at its index."""
    out: set[T] = set()
    for i, value in enumerate(values):
        try:
            out.add(check(value))
        except ValueError as exc:
            problems.add((*at, i), str(exc))
    return out
