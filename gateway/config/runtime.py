"""Frozen runtime objects: what the request path reads, built once at start-up."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.adapter import AdapterFactory, BackendLimits, OptionsModel, Row
from gateway.audit.config import AuditSettings, PgAuditSettings
from gateway.auth import Consumer
from gateway.breaker import BreakerConfig
from gateway.config.models import (
    AdminConfig,
    EnvelopeConfig,
    FieldConfig,
    HealthConfig,
    ListenConfig,
    LoggingConfig,
    ParamConfig,
    QuotaRule,
)
from gateway.normalise import Mapper
from gateway.params import ParamSpec
from gateway.security.settings import DEFAULT_SECURITY, SecuritySettings

__all__ = ["LC2", "Backend", "QuotaSettings", "Service", "Settings"]


@dataclass(frozen=True, slots=True)
class LC2:
    office_header: str
    officer_header: str
    sandbox_header: str
    request_id_header: str
    office_re: re.Pattern[str]
    user_agent_prefix: str | None
    health_requires_auth: bool
    envelope: EnvelopeConfig
    ignore_params: frozenset[str]


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    type: str
    factory: AdapterFactory
    options: OptionsModel
    limits: BackendLimits
    health: HealthConfig
    breaker: BreakerConfig | None
    max_concurrency: int
    max_queue: int
    retry_attempts: int
    retry_budget: float


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    backend: str
    description: str
    description_th: str
    data_path: str
    sandbox_path: str
    health_path: str
    params: tuple[ParamSpec, ...]
    param_index: Mapping[str, ParamSpec]
    operation: Any  # prepared by the backend's adapter factory
    mapper: Mapper
    sandbox_rows: tuple[Row, ...]
    sandbox_match: Mapping[str, str]
    subject_param: str | None  # the citizen ID the audit indexes (hashed)
    # the YAML as written, for the OpenAPI description (never read by a call)
    param_models: Mapping[str, ParamConfig] = field(default_factory=dict, compare=False)
    output_models: Mapping[str, FieldConfig] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    rules: tuple[QuotaRule, ...]
    store: Path
    timezone: str


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
    lc2: LC2
    consumers: Mapping[str, Consumer]
    audit: AuditSettings
    backends: Mapping[str, Backend]
    services: Mapping[str, Service]
    quotas: QuotaSettings
    maintenance_file: Path | None
    shutdown_timeout: float
    security: SecuritySettings = DEFAULT_SECURITY
    state: StateSettings = StateSettings(None, False)
    lookups: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)
