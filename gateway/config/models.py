"""The YAML schema, as pydantic models.

These models only say what a valid file looks like; :mod:`gateway.config.build`
turns a validated file into the frozen runtime objects the request path uses.
Every model forbids unknown keys, so a typo is an error with its line, not a
silently ignored setting.  Defaults follow the observed LC2 conventions in the
project notes and stay overridable because DOPA's spec is not public.
"""

from __future__ import annotations

import re
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.audit.config import AuditConfig, PostgresAuditConfig

__all__ = [
    "SCHEMA_VERSION",
    "AdminConfig",
    "AuthFailuresConfig",
    "BackendConfig",
    "CircuitConfig",
    "ConsumerConfig",
    "EnvelopeConfig",
    "FieldConfig",
    "FieldPolicyConfig",
    "GatewayConfig",
    "HeaderNames",
    "HealthConfig",
    "LC2Config",
    "LimitsConfig",
    "ListenConfig",
    "LoggingConfig",
    "MaintenanceConfig",
    "ParamConfig",
    "QuotaRule",
    "RetryConfig",
    "SandboxConfig",
    "SecurityConfig",
    "ServiceConfig",
    "TLSConfig",
]

# The version of the YAML schema these models describe, printed by `lc2-gateway --version`.
# Raise it when a key is removed or changes meaning, so an operator can tell whether a config
# written for one release is read the same way by another.
SCHEMA_VERSION = 1

_IDENT = r"^[A-Za-z][A-Za-z0-9_]*$"
Seconds = Annotated[float, Field(gt=0, le=3600)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _cidr_list(values: list[str]) -> list[str]:
    for i, v in enumerate(values):
        try:
            ip_network(v.strip(), strict=False)
        except ValueError:
            # the position, not the value: it may have come from the environment
            raise ValueError(
                f"entry {i} is not an IP address or CIDR network (10.1.2.0/24)"
            ) from None
    return values


class TLSConfig(_Model):
    """TLS on the LC2 listener; with ``client_ca_file``, mutual TLS (a client certificate)."""

    cert_file: Path = Field(description="server certificate chain, PEM")
    key_file: Path = Field(description="its private key, PEM")
    key_password: str | None = Field(default=None, description="${ENV} if the key is encrypted")
    client_ca_file: Path | None = Field(
        default=None, description="CA bundle (PEM): require a client certificate signed by it"
    )
    min_version: Literal["1.2", "1.3"] = "1.2"


class ListenConfig(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535, description="0: any free port")
    client_max_size: int = Field(default=64 * 1024, ge=1024, description="request body bytes")
    # What one request may be, before any of it reaches the gateway's code.
    max_line_size: int = Field(
        default=4096, ge=256, le=65536, description="bytes of the request line (method, URL)"
    )
    max_field_size: int = Field(default=4096, ge=256, le=65536, description="bytes of one header")
    max_headers: int = Field(default=32, ge=8, le=512, description="headers in one request")
    header_timeout: float = Field(
        default=10.0, gt=0, le=300, description="seconds to send a whole request head (slowloris)"
    )
    keepalive_timeout: float = Field(
        default=75.0, gt=0, le=3600, description="seconds an idle kept-alive connection stays open"
    )
    max_connections: int = Field(
        default=1024, ge=1, description="open connections per listener; more are closed at accept"
    )
    max_connections_per_address: int = Field(
        default=256, ge=1, description="open connections from one peer address"
    )
    tls: TLSConfig | None = None


class AdminConfig(_Model):
    """Second listener for /metrics, /health, /live, /ready: keep it off the LC2 network."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)
    status_users: dict[str, str] = Field(
        default_factory=dict,
        description="username -> scrypt hash (`lc2-gateway passwd`) for the /status page",
    )
    hosts: list[str] = Field(
        default_factory=list,
        description="names in Host it answers to, besides addresses and localhost",
    )

    @field_validator("status_users")
    @classmethod
    def _usernames(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not name or ":" in name:
                raise ValueError(f"status user {name!r}: a username is non-empty, without ':'")
        return v


class HeaderNames(_Model):
    office: str = "X-Office-Request"
    officer: str = "X-User-Request"
    sandbox: str = "X-Use-Sandbox"
    request_id: str = "X-Request-Id"


class EnvelopeConfig(_Model):
    code: str = "responseCode"
    message: str = "message"
    data: str = "data"
    success_code: str = "000"
    success_message: str = "success"


class LC2Config(_Model):
    base_path: str = Field(default="/api/v1", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    data_url: str = "{base}/{path}"
    sandbox_url: str = "{base}/{path}/sandbox"
    health_url: str = "{base}/{path}/health"
    headers: HeaderNames = HeaderNames()
    office_pattern: str = Field(default=r"[0-9]{3,10}", description="full match")
    user_agent_prefix: str | None = Field(
        default=None, description='required User-Agent prefix, e.g. "Linkage Center 2/"'
    )
    health_requires_auth: bool = False
    envelope: EnvelopeConfig = EnvelopeConfig()
    ignore_params: list[str] = Field(default_factory=list, description="never rejected as unknown")

    @cached_property
    def office_re(self) -> re.Pattern[str]:
        """Compiled once, at the first call: the pattern was checked at validation."""
        return re.compile(self.office_pattern)

    @field_validator("office_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _urls(self) -> LC2Config:
        for name in ("data_url", "sandbox_url", "health_url"):
            url = getattr(self, name)
            if "{path}" not in url or not url.startswith(("/", "{base}")):
                raise ValueError(f"{name} must start with / or {{base}} and contain {{path}}")
        return self


MaskKind = Literal["citizen_id", "year", "year_month", "initial", "null"]


class FieldPolicyConfig(_Model):
    """What of one service's output a consumer gets: an allow list, masks, or both."""

    allow: list[str] | None = Field(
        default=None, description="output fields it may see (a.b for nested); default: all"
    )
    mask: dict[str, MaskKind] = Field(default_factory=dict, description="field -> mask")


class ConsumerConfig(_Model):
    """A caller: LC2's proxy, or another system the data owner approved."""

    username: str = Field(min_length=1)
    password_hash: str | list[str] | None = Field(
        default=None, description="scrypt hash from `lc2-gateway passwd`; a list during rotation"
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="sha256:… digests of API keys (python -m gateway.security.apikey); a list "
        "during rotation. With password_hash too, both are required on every call",
    )
    services: list[str] = Field(default_factory=lambda: ["*"], description="granted services")
    offices: list[str] = Field(default_factory=lambda: ["*"], description="allowed office codes")
    allow_from: list[str] = Field(
        default_factory=list, description="CIDR networks it may call from; default: anywhere"
    )
    client_cert_sha256: list[str] = Field(
        default_factory=list, description="pinned client certificates (needs listen.tls mTLS)"
    )
    fields: dict[str, FieldPolicyConfig] = Field(
        default_factory=dict, description="service -> the fields it gets (default: all)"
    )

    _cidrs = field_validator("allow_from")(_cidr_list)

    @model_validator(mode="after")
    def _some_credential(self) -> ConsumerConfig:
        if not self.password_hash and not self.api_keys:
            raise ValueError("give password_hash, api_keys, or both")
        return self


class AuthFailuresConfig(_Model):
    """Brute-force protection: failed sign-ins before an address or a username is locked out."""

    enabled: bool = True
    window: Seconds = Field(default=300.0, description="seconds over which failures count")
    per_address: int = Field(default=20, ge=1, le=100_000)
    per_username: int = Field(default=10, ge=1, le=100_000)
    lockout: Seconds = Field(default=900.0, description="seconds a locked caller is refused")


class SecurityConfig(_Model):
    allow_from: list[str] = Field(
        default_factory=list, description="CIDR networks that may call at all; default: anywhere"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="peers whose X-Forwarded-For is believed; otherwise it is ignored",
    )
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    auth_failures: AuthFailuresConfig = AuthFailuresConfig()

    _cidrs = field_validator("allow_from", "trusted_proxies")(_cidr_list)


class HealthConfig(_Model):
    interval: Seconds = 10.0
    timeout: Seconds = 2.0


class CircuitConfig(_Model):
    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1, description="consecutive failures to open")
    error_rate: float = Field(default=0.5, gt=0, le=1, description="or this rate over window")
    window: Seconds = 30.0
    min_calls: int = Field(default=20, ge=1, description="calls in window before rate counts")
    open_for: Seconds = 10.0
    half_open_calls: int = Field(default=1, ge=1, le=100)


class RetryConfig(_Model):
    attempts: int = Field(default=1, ge=0, le=3, description="extra tries on a dead connection")
    budget: float = Field(default=0.1, ge=0, le=1, description="retries per call, at most")


class BackendConfig(_Model):
    """Settings every backend has; the rest of the block belongs to the adapter."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(min_length=1)
    pool_size: int = Field(default=4, ge=1, le=256)
    acquire_timeout: Seconds = 2.0
    query_timeout: Seconds = 5.0
    max_concurrency: int | None = Field(
        default=None, ge=1, le=10_000, description="calls in the backend at once (pool_size)"
    )
    max_queue: int = Field(default=100, ge=0, le=100_000, description="calls waiting, at most")
    health: HealthConfig = HealthConfig()
    circuit: CircuitConfig = CircuitConfig()
    retry: RetryConfig = RetryConfig()

    def adapter_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


ParamType = Literal["citizen_id", "string", "integer", "date"]


class ParamConfig(_Model):
    type: ParamType
    required: bool = True
    description: str = ""
    example: str | None = None
    # citizen_id
    bind: Literal["plain", "dashed"] = "plain"
    # string
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=100, ge=1, le=10_000)
    pattern: str | None = None
    choices: list[str] | None = None
    # integer
    minimum: int | None = None
    maximum: int | None = None
    # date: what the URL carries, and what the backend is given
    era: Literal["ce", "be"] = "ce"
    date_bind: Literal["iso", "be_yyyymmdd", "ce_yyyymmdd"] = "iso"
    # what the audit keeps of the value
    audit: Literal["hash", "clear", "omit"] | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class FieldConfig(_Model):
    """One output field: from a column, a constant, or a nested object of fields."""

    column: str | None = None
    const: Any = None
    fields: dict[str, FieldConfig] | None = None
    transform: list[str | dict[str, Any]] = Field(default_factory=list)
    description: str = ""
    description_th: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> FieldConfig:
        given = [k for k in ("column", "const", "fields") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of column, const or fields")
        if self.fields is not None and self.transform:
            raise ValueError("a nested object (fields) takes no transform")
        return self


class SandboxConfig(_Model):
    rows: list[dict[str, Any]] | None = Field(
        default=None, description="legacy-shaped rows (column names), mapped like real ones"
    )
    generate: int = Field(default=3, ge=0, le=100, description="rows to generate if no rows")
    match: dict[str, str] | None = Field(
        default=None,
        description="parameter -> column: return only rows whose column matches the parameter "
        "(default: the citizen-ID parameter and the column of its output field; {}: every row)",
    )
    like: dict[str, str] = Field(
        default_factory=dict,
        description="column -> a value as the legacy column holds it (PR-2567-000012): "
        "generated values keep its shape, with the row's year and running number",
    )
    seed: int = 2562


class ServiceConfig(_Model):
    backend: str
    path: str | None = Field(default=None, description="URL path segment(s); default: the name")
    description: str = ""
    description_th: str = ""
    params: dict[str, ParamConfig] = Field(default_factory=dict)
    operation: dict[str, Any]
    output: dict[str, FieldConfig] = Field(min_length=1)
    sandbox: SandboxConfig = SandboxConfig()

    @field_validator("params")
    @classmethod
    def _param_names(cls, v: dict[str, ParamConfig]) -> dict[str, ParamConfig]:
        for name in v:
            if not re.match(_IDENT, name):
                raise ValueError(f"parameter name {name!r} must match {_IDENT}")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9._~{}-]+(/[A-Za-z0-9._~{}-]+)*", v):
            raise ValueError("path must be URL segments like 'fisher' or 'fisher/{personalId}'")
        return v


class QuotaRule(_Model):
    """A cap on calls: ``limit`` per ``per`` for each officer, office or consumer."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    scope: Literal["officer", "office", "consumer"]
    per: Literal["second", "minute", "hour", "day"]
    limit: int = Field(ge=1, le=100_000_000)
    services: list[str] = Field(default_factory=lambda: ["*"])
    include_sandbox: bool = False


class LimitsConfig(_Model):
    # LC2 itself allows 150 calls a day per user by default; departments add their own caps.
    quotas: list[QuotaRule] = Field(default_factory=list)
    store: Path = Field(default=Path("var/quota.sqlite"), description="shared by all workers")
    timezone: str = Field(default="Asia/Bangkok", description="where a 'day' starts")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _unique(self) -> LimitsConfig:
        names = [q.name for q in self.quotas]
        if len(names) != len(set(names)):
            raise ValueError("quota names must be unique")
        return self


class MaintenanceConfig(_Model):
    file: Path | None = Field(
        default=None, description="while this file exists, data calls get 503 with its text"
    )


class PostgresStateConfig(PostgresAuditConfig):
    """The connection to the shared state store; same fields as the audit store's."""

    db_schema: str = Field(default="lc2_state", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=4, ge=1, le=50)
    # a quota decision waits at most this long before the fail mode applies
    connect_timeout: float = Field(default=2.0, gt=0, le=120)
    command_timeout: float = Field(default=2.0, gt=0, le=600)


class StateConfig(_Model):
    """Where counters and switches that must be exact across processes live.

    ``sqlite`` (the default): the quota file, shared by the workers of one machine.
    ``postgresql``: one store for every gateway of a fleet.
    """

    store: Literal["sqlite", "postgresql"] = "sqlite"
    postgresql: PostgresStateConfig | None = None
    on_unreachable: Literal["fail_closed", "fail_open"] = Field(
        default="fail_open",
        description="fail_closed refuses calls that need a quota decision while the store "
        "is unreachable; fail_open serves them uncounted",
    )

    @model_validator(mode="after")
    def _needs_connection(self) -> StateConfig:
        if self.store == "postgresql" and self.postgresql is None:
            raise ValueError("store: postgresql needs a postgresql: block (dsn, password)")
        return self


class LoggingConfig(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access: bool = True


class GatewayConfig(_Model):
    listen: ListenConfig = ListenConfig()
    admin: AdminConfig = AdminConfig()
    lc2: LC2Config = LC2Config()
    logging: LoggingConfig = LoggingConfig()
    consumers: dict[str, ConsumerConfig] = Field(min_length=1)
    audit: AuditConfig
    lookups: dict[str, dict[str, str]] = Field(default_factory=dict)
    titles: list[str] = Field(default_factory=list, description="extra name titles/ranks")
    backends: dict[str, BackendConfig] = Field(min_length=1)
    services: dict[str, ServiceConfig] = Field(min_length=1)
    limits: LimitsConfig = LimitsConfig()
    security: SecurityConfig = SecurityConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    state: StateConfig = StateConfig()
    shutdown_timeout: float = Field(
        default=15.0, gt=0, le=600, description="seconds running calls get to finish on stop"
    )

    @field_validator("lookups", mode="before")
    @classmethod
    def _lookup_keys(cls, v: Any) -> Any:
        # YAML reads `1: พื้นบ้าน` with an int key; codes are compared as strings
        if isinstance(v, dict):
            return {
                t: {str(k): str(x) for k, x in m.items()} if isinstance(m, dict) else m
                for t, m in v.items()
            }
        return v
