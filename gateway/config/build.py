"""From a YAML file to frozen :class:`Settings`, or every problem with its line.

Validation is all-or-nothing: a file with any problem yields no settings at
all, so a half-applied config can not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.adapter import BackendLimits, OptionsModel, PrepareError
from gateway.audit.config import build_audit_settings, pg_settings
from gateway.auth import Consumer, check_hash_format
from gateway.breaker import BreakerConfig
from gateway.config.loader import ConfigError, LoadedYaml, Path_, Problem, load_yaml
from gateway.config.models import ConsumerConfig, GatewayConfig, ServiceConfig
from gateway.config.runtime import (
    LC2,
    Backend,
    QuotaSettings,
    Service,
    Settings,
    StateSettings,
)
from gateway.normalise import MappingConfigError, compile_mapping
from gateway.params import compile_param
from gateway.policy import PolicyConfigError, compile_policy
from gateway.registry import UnknownAdapter, get_factory
from gateway.sandbox import build_sandbox_rows
from gateway.security.apikey import check_key_hash
from gateway.security.network import Networks
from gateway.security.settings import build_security
from gateway.security.tls import normalise_fingerprint

__all__ = ["build_settings", "load_settings"]

# Option names whose values are secrets: they must come from ${ENV}, never the file.
_SECRET_NAMES = re.compile(r"(^|_)(password|passwd|secret|token|key|passphrase)$")
_PATH_PARAM = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")


class _Problems:
    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.items: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        self.items.append(Problem(path, self.loaded.line_of(path), message))

    def pydantic(self, prefix: Path_, exc: ValidationError) -> None:
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            self.add(prefix + loc, msg)


def _rel(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def _resolve_paths(model: BaseModel, base_dir: Path) -> dict[str, Any]:
    """Relative file paths in options are relative to the config file, like Prometheus."""
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = base_dir / value
    return updates


def _check_secrets(loaded: LoadedYaml, problems: _Problems) -> None:
    def walk(node: Any, path: Path_) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))
        elif (
            path
            and isinstance(path[-1], str)
            and _SECRET_NAMES.search(path[-1])
            and node not in (None, "")
            and path not in loaded.from_env
        ):
            problems.add(path, "a secret must come from the environment: write ${VARIABLE}")

    walk(loaded.data, ())


def _secret_values(loaded: LoadedYaml) -> frozenset[str]:
    """What the environment gave for secret-named keys: the logs must never show these."""
    out: set[str] = set()
    for path in loaded.from_env:
        if not path or not isinstance(path[-1], str) or not _SECRET_NAMES.search(path[-1]):
            continue
        node: Any = loaded.data
        for part in path:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = None
        if isinstance(node, str) and node:
            out.add(node)
    return frozenset(out)


def _consumer(cname: str, cc: ConsumerConfig, cfg: GatewayConfig, problems: _Problems) -> Consumer:
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
    digests: set[bytes] = set()
    for i, k in enumerate(cc.api_keys):
        try:
            digests.add(check_key_hash(k))
        except ValueError as exc:
            problems.add((*at, "api_keys", i), str(exc))
    pins: set[str] = set()
    for i, fp in enumerate(cc.client_cert_sha256):
        try:
            pins.add(normalise_fingerprint(fp))
        except ValueError as exc:
            problems.add((*at, "client_cert_sha256", i), str(exc))
    tls = cfg.listen.tls
    if pins and (tls is None or tls.client_ca_file is None):
        problems.add(
            (*at, "client_cert_sha256"),
            "pinned certificates need mutual TLS: set listen.tls.client_ca_file",
        )
    for svc in cc.fields:
        if svc not in cfg.services:
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


def _policies(
    consumer: Consumer, cc: ConsumerConfig, services: Mapping[str, Service], problems: _Problems
) -> Consumer:
    policies = {}
    for sname, fp in cc.fields.items():
        svc = services.get(sname)
        if svc is None:
            continue  # reported with the service, or above
        try:
            policies[sname] = compile_policy(
                svc.mapper,
                allow=fp.allow,
                mask=fp.mask,
                path=("consumers", consumer.name, "fields", sname),
            )
        except PolicyConfigError as exc:
            problems.add(exc.path, str(exc))
    return replace(consumer, policies=policies) if policies else consumer


def _url(template: str, base: str, path: str) -> str:
    return template.replace("{base}", base).replace("{path}", path)


def _service(
    name: str,
    sc: ServiceConfig,
    cfg: GatewayConfig,
    backends: Mapping[str, Backend],
    problems: _Problems,
) -> Service | None:
    at: Path_ = ("services", name)
    before = len(problems.items)
    backend = backends.get(sc.backend)
    if backend is None:
        if sc.backend not in cfg.backends:
            problems.add((*at, "backend"), f"no backend named {sc.backend!r}")
        return None
    params = tuple(compile_param(p, pc) for p, pc in sc.params.items())
    path = sc.path or name
    for ref in _PATH_PARAM.findall(path):
        if ref not in sc.params:
            problems.add((*at, "path"), f"{{{ref}}} in the path is not a declared parameter")
    operation: Any = None
    try:
        op_model = backend.factory.operation_model.model_validate(sc.operation)
        bind_names = [n for p in params for n in p.bind_names]
        operation = backend.factory.prepare(backend.options, op_model, bind_names)
    except ValidationError as exc:
        problems.pydantic((*at, "operation"), exc)
    except PrepareError as exc:
        problems.add((*at, "operation", *exc.path), str(exc))
    try:
        mapper = compile_mapping(
            sc.output, lookups=cfg.lookups, titles=cfg.titles, path=(*at, "output")
        )
    except MappingConfigError as exc:
        problems.add(exc.path, str(exc))
        return None
    for param in sc.sandbox.match:
        if param not in sc.params:
            problems.add((*at, "sandbox", "match", param), "not a declared parameter")
    if len(problems.items) > before:
        return None
    lc2 = cfg.lc2
    subject = next((p.name for p in params if p.is_citizen_id), None)
    return Service(
        name=name,
        backend=sc.backend,
        description=sc.description,
        description_th=sc.description_th,
        data_path=_url(lc2.data_url, lc2.base_path, path),
        sandbox_path=_url(lc2.sandbox_url, lc2.base_path, path),
        health_path=_url(lc2.health_url, lc2.base_path, path),
        params=params,
        param_index={p.name: p for p in params},
        operation=operation,
        mapper=mapper,
        sandbox_rows=build_sandbox_rows(sc.sandbox, mapper, service=name, lookups=cfg.lookups),
        sandbox_match=dict(sc.sandbox.match),
        subject_param=subject,
        param_models=dict(sc.params),
        output_models=dict(sc.output),
    )


def _without_secrets(problems: list[Problem], secrets: frozenset[str]) -> list[Problem]:
    """Problems whose messages quote no secret, whatever a validator chose to repeat."""
    if not secrets:
        return problems
    out = []
    for p in problems:
        message = p.message
        for secret in secrets:
            message = message.replace(secret, "[secret]")
        out.append(Problem(p.path, p.line, message))
    return out


def build_settings(loaded: LoadedYaml, *, create_key_file: bool = True) -> Settings:
    problems = _Problems(loaded)
    secrets = _secret_values(loaded)
    _check_secrets(loaded, problems)
    try:
        cfg = GatewayConfig.model_validate(loaded.data)
    except ValidationError as exc:
        problems.pydantic((), exc)
        raise ConfigError(_without_secrets(problems.items, secrets), loaded.source) from None

    consumers: dict[str, Consumer] = {}
    usernames: set[str] = set()
    for cname, cc in cfg.consumers.items():
        if cc.username in usernames:
            problems.add(("consumers", cname, "username"), "username used by another consumer")
        usernames.add(cc.username)
        for i, s in enumerate(cc.services):
            if s != "*" and s not in cfg.services:
                problems.add(("consumers", cname, "services", i), f"no service named {s!r}")
        consumers[cname] = _consumer(cname, cc, cfg, problems)

    for user, h in cfg.admin.status_users.items():
        try:
            check_hash_format(h)
        except ValueError as exc:
            problems.add(("admin", "status_users", user), str(exc))

    backends: dict[str, Backend] = {}
    for bname, bc in cfg.backends.items():
        try:
            factory = get_factory(bc.type)
        except UnknownAdapter as exc:
            problems.add(("backends", bname, "type"), str(exc))
            continue
        try:
            options: OptionsModel = factory.options_model.model_validate(bc.adapter_options())
        except ValidationError as exc:
            problems.pydantic(("backends", bname), exc)
            continue
        options = options.model_copy(update=_resolve_paths(options, loaded.base_dir))
        limits = BackendLimits(bc.pool_size, bc.acquire_timeout, bc.query_timeout)
        c = bc.circuit
        breaker = (
            BreakerConfig(
                c.failure_threshold,
                c.error_rate,
                c.window,
                c.min_calls,
                c.open_for,
                c.half_open_calls,
            )
            if c.enabled
            else None
        )
        backends[bname] = Backend(
            bname,
            bc.type,
            factory,
            options,
            limits,
            bc.health,
            breaker,
            max_concurrency=bc.max_concurrency or bc.pool_size,
            max_queue=bc.max_queue,
            retry_attempts=bc.retry.attempts,
            retry_budget=bc.retry.budget,
        )

    services: dict[str, Service] = {}
    routes: dict[str, Path_] = {}
    for sname, sc in cfg.services.items():
        svc = _service(sname, sc, cfg, backends, problems)
        if svc is None:
            continue
        for url in (svc.data_path, svc.sandbox_path, svc.health_path):
            if url in routes:
                problems.add(
                    ("services", sname, "path"), f"URL {url} also used by {routes[url][1]}"
                )
            routes[url] = ("services", sname)
        services[sname] = svc

    for cname, cc in cfg.consumers.items():
        consumers[cname] = _policies(consumers[cname], cc, services, problems)
    security = build_security(cfg, loaded.base_dir, problems.add, secrets)

    for i, rule in enumerate(cfg.limits.quotas):
        for j, s in enumerate(rule.services):
            if s != "*" and s not in cfg.services:
                problems.add(("limits", "quotas", i, "services", j), f"no service named {s!r}")

    audit = build_audit_settings(
        cfg.audit, loaded.base_dir, create_key_file=create_key_file, problem=problems.add
    )
    if problems.items:
        raise ConfigError(_without_secrets(problems.items, secrets), loaded.source)

    lc2 = cfg.lc2
    return Settings(
        source=loaded.source,
        version=loaded.digest,
        listen=cfg.listen,
        admin=cfg.admin,
        logging=cfg.logging,
        lc2=LC2(
            office_header=lc2.headers.office,
            officer_header=lc2.headers.officer,
            sandbox_header=lc2.headers.sandbox,
            request_id_header=lc2.headers.request_id,
            office_re=re.compile(lc2.office_pattern),
            user_agent_prefix=lc2.user_agent_prefix,
            health_requires_auth=lc2.health_requires_auth,
            envelope=lc2.envelope,
            ignore_params=frozenset(lc2.ignore_params),
        ),
        consumers=consumers,
        audit=audit,
        backends=backends,
        services=services,
        quotas=QuotaSettings(
            rules=tuple(cfg.limits.quotas),
            store=_rel(cfg.limits.store, loaded.base_dir),
            timezone=cfg.limits.timezone,
        ),
        maintenance_file=(
            _rel(cfg.maintenance.file, loaded.base_dir) if cfg.maintenance.file else None
        ),
        shutdown_timeout=cfg.shutdown_timeout,
        security=security,
        state=StateSettings(
            postgresql=pg_settings(cfg.state.postgresql)
            if cfg.state.store == "postgresql" and cfg.state.postgresql is not None
            else None,
            fail_closed=cfg.state.on_unreachable == "fail_closed",
        ),
        lookups=cfg.lookups,
    )


def load_settings(
    path: Path, *, env: Mapping[str, str] | None = None, create_key_file: bool = True
) -> Settings:
    return build_settings(load_yaml(path, env), create_key_file=create_key_file)
