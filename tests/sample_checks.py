"""What a reviewer checks in sample rows: every code has its description, every value fits
the meaning of its field, the dates of one row fit together.

The oracle for place codes and names is the demo's own gazetteer
(config/demo/make_fisheries_sql.py), written independently of the gateway.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from gateway.transforms import is_valid_pid

ROOT = Path(__file__).resolve().parent.parent
TITLES = frozenset({"นาย", "นาง", "นางสาว", "น.ส.", "ด.ช.", "ด.ญ.", "จ.ส.อ."})
_THAI_WORDS = re.compile(r"^[\u0E01-\u0E4E]+( [\u0E01-\u0E4E]+)*$")
_HOUSE_NO = re.compile(r"^[1-9][0-9]{0,3}(/[1-9][0-9]{0,2})?$")
_NUMBER_LIKE = re.compile(r"^[A-Z0-9][A-Z0-9/.-]*$")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@cache
def gazetteer() -> dict[str, str]:
    """Code -> name of every province, district and subdistrict of the demo database."""
    path = ROOT / "config" / "demo" / "make_fisheries_sql.py"
    spec = importlib.util.spec_from_file_location("_demo_fisheries", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and NamedTuples look themselves up here
    spec.loader.exec_module(module)
    names: dict[str, str] = {}
    for prov in module.PROVINCES:
        names[prov.code] = prov.name
        for amphur in prov.amphurs:
            names[amphur.code] = amphur.name
            for tambon in amphur.tambons:
                names[tambon.code] = tambon.name
    return names


def _leaves(row: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in row.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _stem(path: str, suffix: str) -> str | None:
    """``address.provinceCode`` with suffix ``Code`` -> ``address.province``."""
    return path[: -len(suffix)] if path.endswith(suffix) else None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return dt.date.fromisoformat(value)
    return None


def _years(later: dt.date, earlier: dt.date) -> int:
    return later.year - earlier.year - ((later.month, later.day) < (earlier.month, earlier.day))


def row_problems(row: Mapping[str, Any], types: Mapping[str, str]) -> list[str]:
    """What a reviewer would object to in one mapped row; ``types`` maps each field path to
    its type as the pack shows it ("string", "integer or string", ...)."""
    out: list[str] = []
    flat = dict(_leaves(row))
    places = gazetteer()
    province_names = {name for code, name in places.items() if len(code) == 2}
    for path, value in flat.items():
        name = path.rsplit(".", 1)[-1]
        kind = types.get(path, "")
        if value is None:
            continue
        allowed = tuple(t for k in kind.split(" or ") for t in _JSON_TYPES.get(k, ()))
        if allowed and (
            not isinstance(value, allowed) or isinstance(value, bool) != (kind == "boolean")
        ):
            out.append(f"{path}: {value!r} is not of type {kind}")
        stem = _stem(path, "Code")
        if stem is not None and f"{stem}Desc" in flat and flat[f"{stem}Desc"] is None:
            out.append(f"{path}: code {value!r} without its description")
        lowered = name.lower()
        if lowered.endswith("personalid") and not (isinstance(value, str) and is_valid_pid(value)):
            out.append(f"{path}: {value!r} is not a valid citizen ID")
        for level, digits in (("subdistrict", 6), ("district", 4), ("province", 2)):
            if lowered.endswith(f"{level}code"):
                if not (isinstance(value, str) and re.fullmatch(f"[0-9]{{{digits}}}", value)):
                    out.append(f"{path}: {value!r} is not a {digits}-digit {level} code")
                elif value not in places:
                    out.append(f"{path}: {value!r} is no {level} in the gazetteer")
                desc = flat.get(f"{path[:-4]}Desc")
                if desc is not None and places.get(value, desc) != desc:
                    out.append(f"{path}: {value!r} is {places[value]}, not {desc!r}")
                break  # subdistrictCode ends with districtCode too
        if lowered.endswith(("districtdesc", "subdistrictdesc")) and value in province_names:
            out.append(f"{path}: {value!r} is a province, not a district")
        if name == "houseNo" and not (isinstance(value, str) and _HOUSE_NO.match(value)):
            out.append(f"{path}: {value!r} is not a house number")
        if name == "villageNo" and not (isinstance(value, int) and 1 <= value <= 30):
            out.append(f"{path}: {value!r} is not a village number")
        if name in ("firstName", "lastName") and not _THAI_WORDS.match(str(value)):
            out.append(f"{path}: {value!r} is not a Thai name")
        if name == "titleDesc" and value not in TITLES:
            out.append(f"{path}: {value!r} is not a title")
        if lowered.endswith(("registrationno", "licenceno", "certificateno")) and not (
            isinstance(value, str) and _NUMBER_LIKE.match(value)
        ):
            out.append(f"{path}: {value!r} does not look like a registration number")
        is_date = lowered.endswith("date") or name == "dateOfBirth"
        if is_date and isinstance(value, str) and _date(value) is None:
            out.append(f"{path}: {value!r} is not an ISO date")
    out.extend(_date_problems(flat))
    # subdistrict within district within province
    for path, value in flat.items():
        if path.endswith("subdistrictCode") and isinstance(value, str):
            district = flat.get(path.replace("subdistrictCode", "districtCode"))
            province = flat.get(path.replace("subdistrictCode", "provinceCode"))
            if district is not None and not value.startswith(str(district)):
                out.append(f"{path}: {value} is not in district {district}")
            if province is not None and not value.startswith(str(province)):
                out.append(f"{path}: {value} is not in province {province}")
    return out


def _date_problems(flat: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    dates = {p: d for p, v in flat.items() if (d := _date(v)) is not None}
    born = next((d for p, d in dates.items() if p.endswith("dateOfBirth")), None)
    if born is not None:
        for path, day in dates.items():
            if path.endswith("dateOfBirth"):
                continue
            if day <= born:
                out.append(f"{path}: {day} is not after the birth on {born}")
            elif path.rsplit(".", 1)[-1] in ("registrationDate", "issueDate") and (
                _years(day, born) < 18
            ):
                out.append(f"{path}: registered at {_years(day, born)}, not an adult")
    for path, day in dates.items():
        if (stem := _stem(path, "expiryDate")) is not None:
            issued = dates.get(f"{stem}issueDate")
            if issued is not None and day <= issued:
                out.append(f"{path}: expires {day}, before its issue on {issued}")
    return out


def rows_problems(rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]) -> list[str]:
    return [f"row {i}: {p}" for i, row in enumerate(rows) for p in row_problems(row, types)]
