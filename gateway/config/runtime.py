"""Frozen runtime objects: what the request path reads, built once at start-up.

One pattern: what is read as written is the validated model itself (a field typed with
the model, or the model under ``config``); a runtime object declares only what start-up
derives from it (a prepared operation, compiled parameters, a resolved path).  Never a
field-by-field copy of a model (tests/test_config_boundary.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.adapter import AdapterFactory, BackendLimits, OptionsModel, Row
from gateway.audit.config import AuditSettings, PgAuditSettings
from gateway.auth import Consumer
from gateway.config.models import (
    AdminConfig,
    BackendConfig,
    LC2Config,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    ServiceConfig,
)
from gateway.normalise import Mapper
from gateway.params import ParamSpec
from gateway.security.settings import DEFAULT_SECURITY, SecuritySettings

__all__ = ["Backend", "Service", "Settings"]


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend's block as written, and what start-up made of the adapter's part of it."""

    name: str
    config: BackendConfig  # type, pool, timeouts, bulkhead, health, circuit, retry
    factory: AdapterFactory
    options: OptionsModel  # the adapter's own keys, validated by its model, paths resolved
    # what the adapter is told: the adapter contract imports no YAML model
    limits: BackendLimits

    @property
    def type(self) -> str:
        return self.config.type


@dataclass(frozen=True, slots=True)
class Service:
    """A service's block as written, and what start-up compiled of it."""

    name: str
    config: ServiceConfig  # as written: backend, descriptions, params, output, sandbox
    data_path: str
    sandbox_path: str
    health_path: str
    params: tuple[ParamSpec, ...]
    param_index: Mapping[str, ParamSpec]
    operation: Any  # prepared by the backend's adapter factory
    mapper: Mapper
    sandbox_rows: tuple[Row, ...]
    # parameter -> column the sandbox filters on: as written, or the citizen-ID key by default
    sandbox_match: Mapping[str, str]
    subject_param: str | None  # the citizen ID the audit indexes (hashed)

    @property
    def backend(self) -> str:
        return self.config.backend


@dataclass(frozen=True, slots=True)
class StateSettings:
    postgresql: PgAuditSettings | None  # None: the SQLite quota file of this machine
    fail_closed: bool


@dataclass(frozen=True, slots=True)
class Settings:
    source: str
    version: str  # short digest of the file, shown in health and metrics
    listen: ListenConfig
    admin: AdminConfig
    logging: LoggingConfig
    lc2: LC2Config
    consumers: Mapping[str, Consumer]
    audit: AuditSettings
    backends: Mapping[str, Backend]
    services: Mapping[str, Service]
    quotas: LimitsConfig  # the limits section, its store resolved against the file
    maintenance_file: Path | None
    shutdown_timeout: float
    security: SecuritySettings = DEFAULT_SECURITY
    state: StateSettings = StateSettings(None, False)
    lookups: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)
