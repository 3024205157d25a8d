"""From a YAML file to frozen :class:`Settings`, or every problem with its line.

Validation is all-or-nothing: a file with any problem yields no settings at
all, so a half-applied config can not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from gateway.adapter import BackendLimits, OptionsModel, PrepareError
from gateway.audit.config import build_audit_settings, pg_settings
from gateway.config.consumers import build_consumers, check_status_users, with_policies
from gateway.config.loader import ConfigError, LoadedYaml, Path_, Problem, load_yaml
from gateway.config.models import (
    BackendConfig,
    ConsumerConfig,
    FieldConfig,
    GatewayConfig,
    ServiceConfig,
)
from gateway.config.problems import Problems, loc
from gateway.config.runtime import Backend, Service, Settings, StateSettings
from gateway.normalise import Mapper, MappingConfigError, compile_mapping
from gateway.params import compile_param
from gateway.registry import UnknownAdapter, get_factory
from gateway.sandbox import build_sandbox
from gateway.security.settings import build_security

__all__ = ["build_settings", "load_settings"]

# Option names whose values are secrets: they must come from ${ENV}, never the file.
_SECRET_NAMES = re.compile(r"(^|_)(password|passwd|secret|token|key|passphrase)$")
_PATH_PARAM = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")


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


def _check_secrets(loaded: LoadedYaml, problems: Problems) -> None:
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


def _declared(data: Any, section: str) -> frozenset[str]:
    """Names written in a section, valid or not: a reference to a refused entry is no typo."""
    entries = data.get(section) if isinstance(data, dict) else None
    return frozenset(str(k) for k in entries) if isinstance(entries, dict) else frozenset()


def _url(template: str, base: str, path: str) -> str:
    return template.replace("{base}", base).replace("{path}", path)


def _service(
    name: str,
    sc: ServiceConfig,
    cfg: GatewayConfig,
    backends: Mapping[str, Backend],
    problems: Problems,
    mappers: dict[str, Mapper],
) -> Service | None:
    """The service, or None with its problems added; its mapper goes to ``mappers`` if it
    compiles, so the grants on it are checked even when something else is wrong."""
    at: Path_ = ("services", name)
    before = len(problems.items)
    backend = backends.get(sc.backend)
    if backend is None and sc.backend not in _declared(problems.loaded.data, "backends"):
        problems.add((*at, "backend"), f"no backend named {sc.backend!r}")
    params = tuple(compile_param(p, pc) for p, pc in sc.params.items())
    path = sc.path or name
    for ref in _PATH_PARAM.findall(path):
        if ref not in sc.params:
            problems.add((*at, "path"), f"{{{ref}}} in the path is not a declared parameter")
    operation: Any = None
    try:
        if backend is not None:  # else its own problems are reported with it
            op_model = backend.factory.operation_model.model_validate(sc.operation)
            bind_names = [n for p in params for n in p.bind_names]
            operation = backend.factory.prepare(backend.options, op_model, bind_names)
    except ValidationError as exc:
        problems.pydantic((*at, "operation"), exc)
    except PrepareError as exc:
        problems.add((*at, "operation", *exc.path), str(exc))
    mapper = _mapper(sc.output, cfg, at, problems)
    if mapper is None:
        return None
    mappers[name] = mapper  # for the grants on it, even if the service has problems
    for param in sc.sandbox.match or {}:
        if param not in sc.params:
            problems.add((*at, "sandbox", "match", param), "not a declared parameter")
    read = {f.column for f in mapper.columns()}
    for column in sc.sandbox.like:
        if column not in read:
            message = f"no output field reads the column {column}"
            problems.add((*at, "sandbox", "like", column), message)
    if len(problems.items) > before or backend is None:
        return None
    lc2 = cfg.lc2
    subject = next((p.name for p in params if p.is_citizen_id), None)
    sandbox_rows, sandbox_match = build_sandbox(
        sc.sandbox, sc.output, sc.params, service=name, lookups=cfg.lookups
    )
    return Service(
        name=name,
        config=sc,
        data_path=_url(lc2.data_url, lc2.base_path, path),
        sandbox_path=_url(lc2.sandbox_url, lc2.base_path, path),
        health_path=_url(lc2.health_url, lc2.base_path, path),
        params=params,
        param_index={p.name: p for p in params},
        operation=operation,
        mapper=mapper,
        sandbox_rows=sandbox_rows,
        sandbox_match=sandbox_match,
        subject_param=subject,
    )


def _mapper(
    output: Mapping[str, FieldConfig], cfg: GatewayConfig, at: Path_, problems: Problems
) -> Mapper | None:
    def compile_(output: Mapping[str, FieldConfig]) -> Mapper:
        return compile_mapping(output, lookups=cfg.lookups, titles=cfg.titles, path=(*at, "output"))

    try:
        return compile_(output)
    except MappingConfigError as first:
        # the mapping stops at its first problem: each field alone finds the others
        found = []
        fields = dict(output)
        for name, field in output.items():
            try:
                compile_({name: field})
            except MappingConfigError as exc:
                found.append(exc)
                fields[name] = field.model_copy(update={"transform": []})
        for err in found or [first]:
            problems.add(err.path, str(err))
        try:  # every field, the broken ones untransformed: enough to check grants against
            return compile_(fields)
        except MappingConfigError:
            return None


_OUTPUT = TypeAdapter(dict[str, FieldConfig])


def _refused_outputs(
    loaded: LoadedYaml, cfg: GatewayConfig, problems: Problems, mappers: dict[str, Mapper]
) -> None:
    """The output of a service the schema refused elsewhere: its transforms and the grants
    on its fields are still checked."""
    raw = loaded.data.get("services") if isinstance(loaded.data, dict) else None
    for name, entry in raw.items() if isinstance(raw, dict) else ():
        if name in cfg.services or not isinstance(entry, dict):
            continue
        try:
            output = _OUTPUT.validate_python(entry.get("output"))
        except ValidationError:
            continue  # reported by the schema already
        mapper = _mapper(output, cfg, ("services", name), problems)
        if mapper is not None:
            mappers[name] = mapper


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


_ENTRIES = frozenset({"services", "backends", "consumers"})  # sections of named entries


class _Remainder(GatewayConfig):
    """What is left once the refused parts are set aside: perhaps no entry at all."""

    consumers: dict[str, ConsumerConfig] = Field(default_factory=dict)
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)


def _validate(loaded: LoadedYaml, problems: Problems) -> GatewayConfig | None:
    """The config model of everything that is valid, every schema problem reported.

    A refused entry (a service, a backend, a consumer) or a refused section is
    left out and the rest validated again, so the later checks (transforms,
    grants, adapter options) still run on it: one run finds every problem.
    """
    data = loaded.data
    dropped: set[Path_] = set()
    model: type[GatewayConfig] = GatewayConfig
    for _ in range(50):  # each round leaves out at least one more part
        try:
            cfg = model.model_validate(data)
        except ValidationError as exc:
            cut: set[Path_] = set()
            for err in exc.errors(include_url=False):
                at = loc(err)
                part = at[:2] if at[:1] and at[0] in _ENTRIES and len(at) > 1 else at[:1]
                if any(at[: len(d)] == d for d in dropped):
                    continue  # a consequence of leaving a part out
                problems.schema((), err)
                cut.add(part)
            if not isinstance(data, dict) or () in cut or not cut:
                return None
            data = _without(data, cut)
            dropped |= cut
            model = _Remainder
            continue
        return cfg
    return None


def _without(data: dict[str, Any], parts: set[Path_]) -> dict[str, Any]:
    out = dict(data)
    for part in parts:
        if len(part) == 1:
            out.pop(str(part[0]), None)
        elif isinstance(out.get(str(part[0])), dict):
            section = out[str(part[0])] = dict(out[str(part[0])])
            section.pop(part[1], None)
    return out


def build_settings(loaded: LoadedYaml, *, create_key_file: bool = True) -> Settings:
    """The one place validated models become runtime objects: each part by its builder."""
    problems = Problems(loaded)
    secrets = _secret_values(loaded)
    _check_secrets(loaded, problems)
    cfg = _validate(loaded, problems)
    if cfg is None:
        raise ConfigError(_without_secrets(problems.items, secrets), loaded.source)

    declared = _declared(loaded.data, "services")
    consumers = build_consumers(cfg, problems, declared)
    check_status_users(cfg, problems)
    backends = _backends(cfg, loaded.base_dir, problems)
    services, mappers = _services(cfg, backends, problems)
    _refused_outputs(loaded, cfg, problems, mappers)
    consumers = {
        n: with_policies(c, cfg.consumers[n], mappers, problems) for n, c in consumers.items()
    }
    security = build_security(cfg, loaded.base_dir, problems.add, secrets)
    _check_quota_services(cfg, problems, declared)
    audit = build_audit_settings(
        cfg.audit, loaded.base_dir, create_key_file=create_key_file, problem=problems.add
    )
    if problems.items:
        raise ConfigError(_without_secrets(problems.items, secrets), loaded.source)

    return Settings(
        source=loaded.source,
        version=loaded.digest,
        listen=cfg.listen,
        admin=cfg.admin,
        logging=cfg.logging,
        lc2=cfg.lc2,
        consumers=consumers,
        audit=audit,
        backends=backends,
        services=services,
        quotas=cfg.limits.model_copy(update={"store": _rel(cfg.limits.store, loaded.base_dir)}),
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


def _backends(cfg: GatewayConfig, base_dir: Path, problems: Problems) -> dict[str, Backend]:
    backends = {}
    for bname, bc in cfg.backends.items():
        backend = _backend(bname, bc, base_dir, problems)
        if backend is not None:
            backends[bname] = backend
    return backends


def _backend(name: str, bc: BackendConfig, base_dir: Path, problems: Problems) -> Backend | None:
    """The backend, or None with its problems added: its adapter found, its options valid."""
    try:
        factory = get_factory(bc.type)
    except UnknownAdapter as exc:
        problems.add(("backends", name, "type"), str(exc))
        return None
    try:
        options: OptionsModel = factory.options_model.model_validate(bc.adapter_options())
    except ValidationError as exc:
        problems.pydantic(("backends", name), exc)
        return None
    options = options.model_copy(update=_resolve_paths(options, base_dir))
    limits = BackendLimits(bc.pool_size, bc.acquire_timeout, bc.query_timeout)
    return Backend(name, bc, factory, options, limits)


def _services(
    cfg: GatewayConfig, backends: Mapping[str, Backend], problems: Problems
) -> tuple[dict[str, Service], dict[str, Mapper]]:
    """The services, and the mapper of every service whose output compiles (for the grants)."""
    services: dict[str, Service] = {}
    mappers: dict[str, Mapper] = {}
    routes: dict[str, Path_] = {}
    for sname, sc in cfg.services.items():
        svc = _service(sname, sc, cfg, backends, problems, mappers)
        if svc is None:
            continue
        for url in (svc.data_path, svc.sandbox_path, svc.health_path):
            if url in routes:
                problems.add(
                    ("services", sname, "path"), f"URL {url} also used by {routes[url][1]}"
                )
            routes[url] = ("services", sname)
        services[sname] = svc
    return services, mappers


def _check_quota_services(cfg: GatewayConfig, problems: Problems, declared: frozenset[str]) -> None:
    for i, rule in enumerate(cfg.limits.quotas):
        for j, s in enumerate(rule.services):
            if s != "*" and s not in declared:
                problems.add(("limits", "quotas", i, "services", j), f"no service named {s!r}")


def load_settings(
    path: Path, *, env: Mapping[str, str] | None = None, create_key_file: bool = True
) -> Settings:
    return build_settings(load_yaml(path, env), create_key_file=create_key_file)
