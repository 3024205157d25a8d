"""The ``audit:`` block of the YAML and the frozen settings built from it.

Every key is documented in ``docs/audit.md``.  Keys are read here once, at
start-up or reload; nothing on the hot path parses YAML.  Two secrets live
outside the audit store: the HMAC key that hides queried citizen IDs and
the Ed25519 key that signs sealed segments.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.audit import keys

__all__ = [
    "AuditConfig",
    "AuditSettings",
    "OfficeHoursConfig",
    "PgAuditSettings",
    "PostgresAuditConfig",
    "ReportConfig",
    "ReportSettings",
    "RetentionConfig",
    "build_audit_settings",
    "default_instance",
    "load_calendar",
    "load_holidays",
    "pg_settings",
]

ProblemSink = Callable[[tuple[str | int, ...], str], None]
_INSTANCE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _frozen() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid")


class PostgresAuditConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    dsn: str = Field(description="postgresql://user@host:port/database, without a password")
    password: SecretStr | None = Field(default=None, description="from ${ENV}")
    db_schema: str = Field(default="public", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=2, ge=1, le=20)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    command_timeout: float = Field(default=5.0, gt=0, le=600)

    @field_validator("dsn")
    @classmethod
    def _no_password(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql://")
        if parts.password:
            raise ValueError("put the password in `password: ${ENV}`, not in the DSN")
        return v


class RetentionConfig(BaseModel):
    model_config = _frozen()

    keep_days: int | None = Field(
        default=None, ge=1, description="archive then purge sealed segments older than this"
    )
    archive_dir: Path | None = Field(default=None, description="default: beside the store")


class OfficeHoursConfig(BaseModel):
    model_config = _frozen()

    start: str = "08:30"
    end: str = "16:30"
    weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])  # ISO: Monday = 1
    grace_minutes: int = Field(default=0, ge=0, le=240)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.fullmatch(v):
            raise ValueError("write a time as HH:MM (24 h)")
        return v

    @field_validator("weekdays")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("ISO weekdays 1 (Monday) to 7 (Sunday)")
        return v

    @model_validator(mode="after")
    def _order(self) -> OfficeHoursConfig:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class ReportConfig(BaseModel):
    model_config = _frozen()

    office_hours: OfficeHoursConfig = Field(default_factory=OfficeHoursConfig)
    holidays: list[Path] = Field(default_factory=list, description="holiday calendar files")
    baseline_days: int = Field(default=60, ge=7, le=366)
    baseline_min_days: int = Field(default=5, ge=1, le=60)
    volume_factor: float = Field(default=3.0, gt=1, le=100)
    volume_min_calls: int = Field(default=30, ge=1)
    burst_window: float = Field(default=600.0, gt=0, le=86_400)
    burst_citizens: int = Field(default=20, ge=2)
    repeat_lookups: int = Field(default=5, ge=2)


class AuditConfig(BaseModel):
    model_config = _frozen()

    store: Literal["sqlite", "postgresql"] = "sqlite"
    path: Path = Path("var/audit.sqlite")
    postgresql: PostgresAuditConfig | None = None
    instance: str | None = Field(default=None, description="this writer's chain; host name")
    key: SecretStr | None = Field(default=None, description="HMAC key for citizen IDs (env)")
    key_file: Path | None = Field(
        default=None, description="file with the HMAC key; created (0600) if missing"
    )
    seal_key: SecretStr | None = Field(default=None, description="Ed25519 seed, hex (env)")
    seal_key_file: Path | None = Field(
        default=None, description="Ed25519 private key (PEM); created (0600) if missing"
    )
    trusted_keys: list[Path] = Field(
        default_factory=list, description="public keys of other writers or retired seal keys"
    )
    seal_period: Literal["day", "hour"] = "day"
    seal_grace: float = Field(default=600.0, ge=0, le=86_400)
    seal_interval: float = Field(default=60.0, gt=0, le=3600)
    timezone: str = "Asia/Bangkok"
    fail_closed: bool = True
    retry_interval: float = Field(default=1.0, gt=0, le=300)
    batch_max: int = Field(default=512, ge=1, le=10_000)
    queue_max: int = Field(default=20_000, ge=10)
    synchronous: Literal["full", "normal"] = "full"
    commit_timeout: float = Field(default=5.0, gt=0, le=600)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("instance")
    @classmethod
    def _instance(cls, v: str | None) -> str | None:
        if v is not None and not _INSTANCE.fullmatch(v):
            raise ValueError("1-64 characters among A-Z a-z 0-9 . _ -")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AuditConfig:
        if (self.key is None) == (self.key_file is None):
            raise ValueError("set exactly one of key (from ${ENV}) or key_file")
        if self.seal_key is not None and self.seal_key_file is not None:
            raise ValueError("set at most one of seal_key (from ${ENV}) or seal_key_file")
        if self.store == "postgresql" and self.postgresql is None:
            raise ValueError("store: postgresql needs a postgresql: block (dsn, password)")
        return self


@dataclass(frozen=True, slots=True)
class PgAuditSettings:
    dsn: str
    password: str | None
    schema: str
    pool_size: int
    connect_timeout: float
    command_timeout: float


def pg_settings(pg: PostgresAuditConfig) -> PgAuditSettings:
    """A PostgreSQL connection's settings (the audit store's, the shared state store's)."""
    return PgAuditSettings(
        dsn=pg.dsn,
        password=None if pg.password is None else pg.password.get_secret_value(),
        schema=pg.db_schema,
        pool_size=pg.pool_size,
        connect_timeout=pg.connect_timeout,
        command_timeout=pg.command_timeout,
    )


@dataclass(frozen=True, slots=True)
class ReportSettings:
    office_start: int  # minutes after midnight, local
    office_end: int
    weekdays: frozenset[int]
    grace_minutes: int
    # the overlay files' special days (sorted; a tuple keeps the settings hashable) and the
    # years they cover; public holidays come from gateway.audit.calendar
    holidays: tuple[tuple[dt.date, str], ...]
    holiday_years: frozenset[int]
    baseline_days: int
    baseline_min_days: int
    volume_factor: float
    volume_min_calls: int
    burst_window: float
    burst_citizens: int
    repeat_lookups: int


@dataclass(frozen=True, slots=True)
class AuditSettings:
    path: Path
    key: bytes
    batch_max: int
    queue_max: int
    synchronous: str
    commit_timeout: float
    store: str = "sqlite"
    postgresql: PgAuditSettings | None = None
    instance: str = "main"
    seal_seed: bytes | None = None  # raw Ed25519 seed; None only for `check`
    seal_key_path: Path | None = None
    trusted_keys: tuple[bytes, ...] = ()  # raw Ed25519 public keys
    seal_period: str = "day"
    seal_grace: float = 600.0
    seal_interval: float = 60.0
    timezone: str = "Asia/Bangkok"
    fail_closed: bool = True
    retry_interval: float = 1.0
    keep_days: int | None = None
    archive_dir: Path = Path("var/audit-archive")
    report: ReportSettings | None = None

    @property
    def where(self) -> str:
        """The store, for messages (never with a password)."""
        if self.store == "postgresql" and self.postgresql is not None:
            return f"{self.postgresql.dsn} (schema {self.postgresql.schema})"
        return str(self.path)


def _abs(base_dir: Path, p: Path) -> Path:
    return p if p.is_absolute() else base_dir / p


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` (0600) atomically; a file that appeared meanwhile wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if it exists: several workers may start at once
    finally:
        os.unlink(tmp)


def _hmac_key(cfg: AuditConfig, base_dir: Path, create: bool, problem: ProblemSink) -> bytes:
    if cfg.key is not None:
        key = cfg.key.get_secret_value().encode("utf-8")
        if len(key) < 16:
            problem(("audit", "key"), "must be at least 16 characters")
        return key
    assert cfg.key_file is not None
    path = _abs(base_dir, cfg.key_file)
    if not path.exists():
        if not create:
            return b"\0" * 32  # `check` must not create files; serve will
        _write_new(path, secrets.token_hex(32) + "\n")
    try:
        key = path.read_text(encoding="ascii").strip().encode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        problem(("audit", "key_file"), f"cannot read: {exc}")
        return b""
    if len(key) < 16:
        problem(("audit", "key_file"), "key file holds fewer than 16 characters")
    return key


def _seal_seed(cfg: AuditConfig, path: Path, create: bool, problem: ProblemSink) -> bytes | None:
    if cfg.seal_key is not None:
        try:
            return keys.seed_from_hex(cfg.seal_key.get_secret_value())
        except ValueError as exc:
            problem(("audit", "seal_key"), str(exc))
            return None
    if not path.exists():
        if not create:
            return None
        _write_new(path, keys.new_private_pem())
    try:
        return keys.load_private_seed(path)
    except (OSError, ValueError) as exc:
        problem(("audit", "seal_key_file"), f"cannot read {path}: {exc}")
        return None


def load_holidays(path: Path) -> dict[dt.date, str]:
    """A calendar file: ``holidays: [{date: 2026-10-13, name: ..., name_th: ...}]``."""
    return load_calendar(path)[0]


def load_calendar(path: Path) -> tuple[dict[dt.date, str], frozenset[int]]:
    """The file's days and the years it vouches for: ``years: [2026]``, else its days' years."""
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = data.get("holidays") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("expected a top-level `holidays:` list")
    years = data.get("years")
    if years is not None and (
        not isinstance(years, list) or not all(type(y) is int and 1900 < y < 2200 for y in years)
    ):
        raise ValueError("`years:` must be a list of years, e.g. [2026]")
    out: dict[dt.date, str] = {}
    for i, item in enumerate(items):
        day = item.get("date") if isinstance(item, dict) else None
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day)
            except ValueError:
                day = None
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            raise ValueError(f"holidays[{i}]: `date: YYYY-MM-DD` is required")
        name = item.get("name_th") or item.get("name") or "holiday"
        out[day] = str(name) if day not in out else f"{out[day]}; {name}"
    return out, frozenset(years if years is not None else {d.year for d in out})


def _report(cfg: ReportConfig, base_dir: Path, problem: ProblemSink) -> ReportSettings:
    holidays: dict[dt.date, str] = {}
    years: set[int] = set()
    for i, p in enumerate(cfg.holidays):
        path = _abs(base_dir, p)
        try:
            days, covered = load_calendar(path)
            holidays.update(days)
            years |= covered
        except (OSError, ValueError, yaml.YAMLError) as exc:
            problem(("audit", "report", "holidays", i), f"{path}: {exc}")
    oh = cfg.office_hours

    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    return ReportSettings(
        office_start=minutes(oh.start),
        office_end=minutes(oh.end),
        weekdays=frozenset(oh.weekdays),
        grace_minutes=oh.grace_minutes,
        holidays=tuple(sorted(holidays.items())),
        holiday_years=frozenset(years),
        baseline_days=cfg.baseline_days,
        baseline_min_days=cfg.baseline_min_days,
        volume_factor=cfg.volume_factor,
        volume_min_calls=cfg.volume_min_calls,
        burst_window=cfg.burst_window,
        burst_citizens=cfg.burst_citizens,
        repeat_lookups=cfg.repeat_lookups,
    )


def default_instance() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64]
    return name or "main"


def build_audit_settings(
    cfg: AuditConfig, base_dir: Path, *, create_key_file: bool, problem: ProblemSink
) -> AuditSettings:
    path = _abs(base_dir, cfg.path)
    seal_path = _abs(base_dir, cfg.seal_key_file or path.parent / "audit-seal.key")
    trusted: list[bytes] = []
    for i, p in enumerate(cfg.trusted_keys):
        try:
            trusted.append(keys.load_public(_abs(base_dir, p)))
        except (OSError, ValueError) as exc:
            problem(("audit", "trusted_keys", i), f"cannot read a public key: {exc}")
    pg = cfg.postgresql
    return AuditSettings(
        path=path,
        key=_hmac_key(cfg, base_dir, create_key_file, problem),
        batch_max=cfg.batch_max,
        queue_max=cfg.queue_max,
        synchronous=cfg.synchronous,
        commit_timeout=cfg.commit_timeout,
        store=cfg.store,
        postgresql=None if pg is None else pg_settings(pg),
        instance=cfg.instance or default_instance(),
        seal_seed=_seal_seed(cfg, seal_path, create_key_file, problem),
        seal_key_path=None if cfg.seal_key is not None else seal_path,
        trusted_keys=tuple(trusted),
        seal_period=cfg.seal_period,
        seal_grace=cfg.seal_grace,
        seal_interval=cfg.seal_interval,
        timezone=cfg.timezone,
        fail_closed=cfg.fail_closed,
        retry_interval=cfg.retry_interval,
        keep_days=cfg.retention.keep_days,
        archive_dir=_abs(base_dir, cfg.retention.archive_dir or path.parent / "audit-archive"),
        report=_report(cfg.report, base_dir, problem),
    )
