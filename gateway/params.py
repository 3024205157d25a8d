"""Input parameters: one compiled validator per declared parameter.

Built once from YAML; on the hot path a parameter is one call that either
returns the value to bind or raises ``ValueError`` with a reason a person can
act on ("checksum digit is wrong", not "invalid").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.config.models import ParamConfig
from gateway.transforms import check_digit, format_pid

__all__ = ["PID_FORMS", "AuditMode", "ParamSpec", "compile_param"]

AuditMode = Literal["hash", "clear", "omit"]

_DIGITS13 = re.compile(r"[0-9]{13}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_YMD8 = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")


# Legacy PID columns hold one person's ID in several spellings.  Normalising
# the column in SQL defeats its index, so a query may instead bind every
# spelling: ``WHERE PID IN (:personalId, :personalId__dashed, ...)``.
PID_FORMS: dict[str, Callable[[str], str]] = {
    "dashed": format_pid,  # 1-2345-67890-12-1
    "spaced": lambda p: format_pid(p).replace("-", " "),  # 1 2345 67890 12 1
    "padded": lambda p: p.ljust(17),  # CHAR(17) as SQLite keeps it
}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    kind: str
    required: bool
    parse: Callable[[str], object]
    audit: AuditMode
    is_citizen_id: bool

    @property
    def bind_names(self) -> tuple[str, ...]:
        """Every placeholder name this parameter can fill."""
        if not self.is_citizen_id:
            return (self.name,)
        return (self.name, *(f"{self.name}__{form}" for form in PID_FORMS))

    def derived(self, value: object) -> dict[str, object]:
        """Values of the extra placeholders (the other spellings of a citizen ID)."""
        if not self.is_citizen_id or value is None:
            return (
                {f"{self.name}__{form}": None for form in PID_FORMS} if self.is_citizen_id else {}
            )
        plain = str(value).replace("-", "")
        return {f"{self.name}__{form}": fn(plain) for form, fn in PID_FORMS.items()}


def _citizen_id(bind: str) -> Callable[[str], object]:
    def parse(raw: str) -> object:
        if not _DIGITS13.fullmatch(raw):
            raise ValueError("must be exactly 13 digits")
        if check_digit(raw[:12]) != int(raw[12]):
            raise ValueError("checksum digit is wrong")
        return format_pid(raw) if bind == "dashed" else raw

    return parse


def _string(cfg: ParamConfig) -> Callable[[str], object]:
    pattern = re.compile(cfg.pattern) if cfg.pattern else None
    choices = frozenset(cfg.choices) if cfg.choices else None
    lo, hi = cfg.min_length, cfg.max_length

    def parse(raw: str) -> object:
        if not lo <= len(raw) <= hi:
            raise ValueError(f"length must be {lo}..{hi} characters")
        if choices is not None and raw not in choices:
            raise ValueError(f"must be one of: {', '.join(sorted(choices))}")
        if pattern is not None and not pattern.fullmatch(raw):
            raise ValueError(f"must match {pattern.pattern}")
        return raw

    return parse


def _integer(cfg: ParamConfig) -> Callable[[str], object]:
    lo, hi = cfg.minimum, cfg.maximum

    def parse(raw: str) -> object:
        if not re.fullmatch(r"-?[0-9]{1,18}", raw):
            raise ValueError("must be an integer")
        value = int(raw)
        if lo is not None and value < lo:
            raise ValueError(f"must be >= {lo}")
        if hi is not None and value > hi:
            raise ValueError(f"must be <= {hi}")
        return value

    return parse


def _date(cfg: ParamConfig) -> Callable[[str], object]:
    offset = 543 if cfg.era == "be" else 0
    shape = "YYYY-MM-DD or YYYYMMDD" + (" (Buddhist Era year)" if offset else "")

    def parse(raw: str) -> object:
        m = _ISO_DATE.fullmatch(raw) or _YMD8.fullmatch(raw)
        if m is None:
            raise ValueError(f"must be a date {shape}")
        try:
            day = dt.date(int(m.group(1)) - offset, int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise ValueError(f"is not a real calendar date ({shape})") from None
        if cfg.date_bind == "be_yyyymmdd":
            return f"{day.year + 543:04d}{day.month:02d}{day.day:02d}"
        if cfg.date_bind == "ce_yyyymmdd":
            return day.strftime("%Y%m%d")
        return day.isoformat()

    return parse


def compile_param(name: str, cfg: ParamConfig) -> ParamSpec:
    parse: Callable[[str], object]
    if cfg.type == "citizen_id":
        parse = _citizen_id(cfg.bind)
    elif cfg.type == "string":
        parse = _string(cfg)
    elif cfg.type == "integer":
        parse = _integer(cfg)
    else:
        parse = _date(cfg)
    # A queried citizen ID is personal data: the audit keeps only its keyed hash by default.
    audit: AuditMode = cfg.audit or ("hash" if cfg.type == "citizen_id" else "clear")
    return ParamSpec(name, cfg.type, cfg.required, parse, audit, cfg.type == "citizen_id")
