"""Sandbox data: legacy-shaped rows that never come from a backend.

LC2 tests a provider in a sandbox phase before production.  Sandbox rows are
either declared in YAML or generated here from the service's own mapping, in
the *legacy* shape (BE CHAR(8) dates, dashed PIDs, TIS-620 text as a latin1
column would return it), so a sandbox answer goes through exactly the same
validation and normalisation as a real one.  Generation is seeded: the same
config always gives the same rows, which testers can rely on.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from gateway.adapter import Row
from gateway.config.models import SandboxConfig
from gateway.normalise import FieldMap, Mapper
from gateway.transforms import check_digit, format_pid

__all__ = ["build_sandbox_rows", "sandbox_filter"]

_FIRST_M = ("สมชาย", "ประเสริฐ", "วิชัย", "สมศักดิ์", "บุญมี", "ณรงค์")
_FIRST_F = ("สมหญิง", "มาลี", "วันเพ็ญ", "สุดารัตน์", "บุปผา", "กนกวรรณ")
_LAST = ("ใจดี", "ศรีสุข", "ทองคำ", "แสงทอง", "บุญมา", "รักษ์ทะเล")
_PLACES = ("บ้านแหลม", "ท่าฉลอม", "บางปู", "หัวหิน", "ปากน้ำ", "ท่าศาลา")


def _pid(rng: random.Random) -> str:
    first12 = str(rng.choice((1, 3))) + "".join(str(rng.randrange(10)) for _ in range(11))
    return format_pid(first12 + str(check_digit(first12)))


def _as_latin1_column(text: str) -> str:
    # What a driver returns for TIS-620 bytes kept in a latin1 column.
    return text.encode("cp874").decode("latin1")


def _thai_for(field: str, rng: random.Random) -> str:
    f = field.lower()
    if "title" in f:
        return rng.choice(("นาย", "นาง", "นางสาว"))
    if "last" in f or "surname" in f:
        return rng.choice(_LAST)
    if "first" in f or f.endswith("name"):
        return rng.choice(_FIRST_M + _FIRST_F)
    return rng.choice(_PLACES)


def _legacy_value(
    fields: Sequence[FieldMap], rng: random.Random, lookups: Mapping[str, Mapping[str, str]]
) -> object:
    """A value for one legacy column, shaped by every transform that reads it."""
    kinds = {t for f in fields for t in f.transforms}
    name = fields[0].name.lower()
    thai_bytes = bool(kinds & {"cp874", "thai"})
    if "pid" in kinds or "personalid" in name:
        return _pid(rng)
    if "be_date" in kinds:
        return f"{rng.randrange(2500, 2550)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    if "date" in kinds or "date" in name:
        return f"{rng.randrange(1960, 2010)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if "name" in kinds:
        title, first = rng.choice((("นาย", _FIRST_M), ("นางสาว", _FIRST_F)))
        text = f"{title}{rng.choice(first)}  {rng.choice(_LAST)}"
        return _as_latin1_column(text) if thai_bytes else text
    if "lookup" in kinds:
        keys = [k for table in lookups.values() for k in table]
        return rng.choice(keys) if keys else "1"
    if kinds & {"int", "float", "decimal", "zfill", "digits"}:
        return str(rng.randrange(1, 20))
    if "bool" in kinds:
        return rng.choice(("Y", "N"))
    if "code" in name:
        return f"{rng.randrange(1, 99):02d}"
    text = _thai_for(fields[0].name, rng)
    return _as_latin1_column(text) if thai_bytes else text


def build_sandbox_rows(
    cfg: SandboxConfig,
    mapper: Mapper,
    *,
    service: str,
    lookups: Mapping[str, Mapping[str, str]],
) -> tuple[Row, ...]:
    if cfg.rows is not None:
        return tuple(dict(r) for r in cfg.rows)
    rng = random.Random(f"{cfg.seed}:{service}")
    by_column: dict[str, list[FieldMap]] = {}
    for f in mapper.columns():
        assert f.column is not None
        by_column.setdefault(f.column, []).append(f)
    rows: list[Row] = []
    for _ in range(cfg.generate):
        rows.append({col: _legacy_value(fs, rng, lookups) for col, fs in by_column.items()})
    return tuple(rows)


def _digits(value: object) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def sandbox_filter(
    rows: Sequence[Row], match: Mapping[str, str], params: Mapping[str, object]
) -> list[Row]:
    """Rows whose ``match`` columns equal the request's parameters.

    Compared on digits when the parameter is all digits, so a dashed PID in a
    legacy-shaped sandbox row matches the plain 13 digits of the request.
    """
    if not match:
        return list(rows)
    out: list[Row] = []
    for row in rows:
        for param, column in match.items():
            want = str(params.get(param, ""))
            have = row.get(column)
            if want.replace("-", "").isdigit():
                if _digits(have) != _digits(want):
                    break
            elif str(have).strip() != want:
                break
        else:
            out.append(row)
    return out
