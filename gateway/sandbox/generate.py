"""Legacy-shaped sandbox rows generated from a service's output mapping.

Each column gets the value its fields mean: a field name says what it holds
(``firstName``, ``subdistrictCode``, ``issueDate``...), the facts of the row
(:mod:`.facts`) give that value, and the field's transforms, read backwards
through their own descriptions, give the legacy form the column would hold
(a BE CHAR(8) date, a dashed citizen ID, TIS-620 text as a latin1 column
returns it).  A column read by a ``name`` transform holds the full name; one
read by a ``lookup`` holds a code of the table, so the code field and its
description field agree.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.adapter import Row
from gateway.config.models import FieldConfig
from gateway.transforms import Transform, chain_types, compile_chain, legacy_value, split_spec
from gateway.transforms.registry import REGISTRY, JsonTypes, Lookups, lookup_table
from gateway.transforms.thaidate import BE_OFFSET

from .facts import PLACES, VESSEL_NAMES, Place, RowFacts, person, row_facts

__all__ = ["Leaf", "generate_rows", "leaves", "role_of"]

# What a field holds, by the end of its name (compared in lower case, longest first).
_ROLES: Final = dict(
    sorted(
        {
            "personalid": "pid",
            "titledesc": "title",
            "firstname": "first",
            "lastname": "last",
            "fullname": "full_name",
            "dateofbirth": "born",
            "birthdate": "born",
            "expirydate": "expires",
            "expiredate": "expires",
            "registrationdate": "registered",
            "issuedate": "registered",
            "dateofmovein": "registered",
            "date": "happened",
            "houseno": "house_no",
            "villageno": "village_no",
            "alleydesc": "soi",
            "alleywaydesc": "soi",
            "roaddesc": "road",
            "subdistrictcode": "subdistrict_code",
            "subdistrictdesc": "subdistrict",
            "districtcode": "district_code",
            "districtdesc": "district",
            "provincecode": "province_code",
            "provincedesc": "province",
            "registrationno": "number",
            "licenceno": "number",
            "licenseno": "number",
            "certificateno": "number",
            "id": "number",
            "sequence": "sequence",
            "vesselname": "vessel",
            "farmname": "farm",
            "code": "code",
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
_FALLBACK_TEXT: Final = "ข้อมูลทดสอบ"  # "test data": honest where a field's meaning is unknown


def role_of(name: str) -> str | None:
    """What a field named ``name`` holds, from the end of its name; None if unknown."""
    lowered = name.lower()
    return next((role for end, role in _ROLES.items() if lowered.endswith(end)), None)


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    column: str
    specs: tuple[str | Mapping[str, object], ...]


def leaves(output: Mapping[str, FieldConfig]) -> Iterator[Leaf]:
    """Every output field that reads a column, depth first."""
    for name, fc in output.items():
        if fc.fields is not None:
            yield from leaves(fc.fields)
        elif fc.column is not None:
            yield Leaf(name, fc.column, tuple(fc.transform))


_DATES: Final = frozenset({"born", "registered", "expires", "happened"})


def _role(leaf: Leaf) -> str | None:
    """What the field holds: as its name says, unless its transforms read a citizen ID or
    a date and the name says otherwise."""
    role = role_of(leaf.name)
    if _reading(leaf, "citizen_id") is not None:
        return "pid"
    if _reading(leaf, "date") is not None and role not in _DATES:
        return "happened"
    return role


def _reading(leaf: Leaf, reads: str) -> int | None:
    """Index of the first transform of ``leaf`` that reads ``reads``, if any."""
    for index, spec in enumerate(leaf.specs):
        info = REGISTRY.get(split_spec(spec)[0])
        if info is not None and info.reads == reads:
            return index
    return None


def _initials(service: str) -> str:
    return (service[:1] + "".join(c for c in service[1:] if c.isupper())).upper()


def _number(facts: RowFacts, like: str | None, service: str, rng: random.Random) -> str:
    """A registration number: shaped like ``like`` when given (letters kept, a BE year set
    to the year registered, the last run of digits the running number)."""
    be_year = facts.registered.year + BE_OFFSET
    if like is None:
        return f"{_initials(service)}-{be_year}-{facts.number:06d}"
    runs = list(re.finditer(r"[0-9]+", like))
    out, last = [], 0
    for i, run in enumerate(runs):
        text, width = run.group(), len(run.group())
        if width == 4 and 2400 <= int(text) <= 2700:
            text = str(be_year)
        elif width == 4 and 1900 <= int(text) <= 2100:
            text = str(facts.registered.year)
        elif i == len(runs) - 1:
            text = f"{facts.number % 10**width:0{width}d}"
        else:
            text = "".join(str(rng.randrange(10)) for _ in range(width))
        out += [like[last : run.start()], text]
        last = run.end()
    return "".join([*out, like[last:]])


def _by_role(
    role: str | None, leaf: Leaf, facts: RowFacts, rng: random.Random, like: str | None,
    service: str,
) -> object:  # fmt: skip
    who, place = facts.person, facts.place
    values: dict[str, object] = {
        "pid": who.pid,
        "title": who.title,
        "first": who.first,
        "last": who.last,
        "full_name": who.full_name,
        "born": who.born,
        "registered": facts.registered,
        "expires": facts.expires,
        "happened": facts.happened,
        "house_no": facts.house_no,
        "village_no": facts.village_no,
        "soi": facts.soi,
        "road": place.roads[facts.index % len(place.roads)],
        "subdistrict_code": place.subdistrict_code,
        "subdistrict": place.subdistrict,
        "district_code": place.district_code,
        "district": place.district,
        "province_code": place.province_code,
        "province": place.province,
        "sequence": facts.index + 1,
        "vessel": f"{VESSEL_NAMES[facts.number % len(VESSEL_NAMES)]} {facts.number % 9 + 1}",
        "farm": f"ฟาร์ม{who.last}",
    }
    if role == "number":
        return _number(facts, like, service, rng)
    if role == "code":  # a zfill after it pads it to its declared width
        return f"{rng.randrange(1, 10):02d}"
    return values.get(role or "")


def _fallback(types: JsonTypes | None, rng: random.Random) -> object:
    if types == frozenset({"integer"}):
        return rng.randrange(1, 100)
    if types == frozenset({"number"}):
        return round(rng.uniform(1, 500), 2)
    if types == frozenset({"boolean"}):
        return rng.random() < 0.5
    return _FALLBACK_TEXT


def _fit(value: object, leaf: Leaf, types: JsonTypes | None, rng: random.Random) -> object:
    """``value`` as the type the field's transforms yield."""
    if isinstance(value, dt.date):
        if _reading(leaf, "date") is not None:
            return value  # the date transforms write their own legacy form
        return value.isoformat() if types is None or "string" in types else _fallback(types, rng)
    if types is None or "string" in types:
        return value if isinstance(value, str) else str(value)
    if types == frozenset({"integer"}) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        types == frozenset({"number"})
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return value
    return _fallback(types, rng)


def _pick_code(table: Mapping[str, object], facts: RowFacts, rng: random.Random) -> str:
    """A code of ``table`` that fits the row: the person's gender, the row's province."""
    codes = list(table)
    genders = [c for c in codes if "ชาย" in str(table[c]) or "หญิง" in str(table[c])]
    if genders:
        wanted = "ชาย" if facts.person.male else "หญิง"
        return next((c for c in genders if str(table[c]).endswith(wanted)), genders[0])
    if facts.place.province_code in table:
        return facts.place.province_code
    return rng.choice(codes) if codes else ""


def _column_value(
    fields: Sequence[Leaf], runs: Sequence[Transform], facts: RowFacts, rng: random.Random,
    lookups: Lookups, like: str | None, service: str,
) -> object:  # fmt: skip
    for leaf in fields:
        if (at := _reading(leaf, "full_name")) is not None:
            return legacy_value(leaf.specs[:at], facts.person.full_name)
    for leaf in fields:
        if (at := _reading(leaf, "code")) is not None:
            _, table, _ = lookup_table(split_spec(leaf.specs[at])[1], lookups)
            return legacy_value(leaf.specs[:at], _pick_code(table, facts, rng))
    chosen = min(range(len(fields)), key=lambda i: _role(fields[i]) is None)
    leaf, run = fields[chosen], runs[chosen]
    types = chain_types(leaf.specs, lookups)
    value = _by_role(_role(leaf), leaf, facts, rng, like, service)
    wanted = legacy_value(
        leaf.specs, _fallback(types, rng) if value is None else _fit(value, leaf, types, rng)
    )
    # A field whose meaning is unknown may refuse the stand-in value (digits of a
    # text): the last transform's own sample, in the legacy form of the steps before it.
    last = REGISTRY.get(split_spec(leaf.specs[-1])[0]) if leaf.specs else None
    for candidate in (
        wanted,
        *([] if last is None else [legacy_value(leaf.specs[:-1], last.sample)]),
    ):
        try:
            if run(candidate) is not None:
                return candidate
        except (ValueError, TypeError):
            continue
    return wanted


def _places(by_column: Mapping[str, Sequence[Leaf]], lookups: Lookups) -> tuple[Place, ...]:
    """The places a row may be in: those of a province lookup table, when there is one."""
    for fields in by_column.values():
        for leaf in fields:
            at = _reading(leaf, "code")
            if at is not None and _role(leaf) in ("province", "province_code"):
                table = lookup_table(split_spec(leaf.specs[at])[1], lookups)[1]
                inside = tuple(p for p in PLACES if p.province_code in table)
                if inside:
                    return inside
    return PLACES


def generate_rows(
    output: Mapping[str, FieldConfig],
    *,
    count: int,
    seed: str,
    service: str,
    lookups: Lookups,
    like: Mapping[str, str],
    one_person: bool,
) -> tuple[Row, ...]:
    """``count`` legacy rows; ``one_person``: all of one person (the sample call's ID)."""
    rng = random.Random(seed)
    by_column: dict[str, list[Leaf]] = {}
    for leaf in leaves(output):
        by_column.setdefault(leaf.column, []).append(leaf)
    runs = {
        column: [compile_chain(leaf.specs, lookups=lookups) for leaf in fields]
        for column, fields in by_column.items()
    }
    places = _places(by_column, lookups)
    shared = (person(rng), rng.choice(places)) if one_person else None
    number = rng.randrange(1, 5000)
    rows: list[Row] = []
    for index in range(count):
        number += rng.randrange(1, 40)
        who, home = shared or (person(rng), rng.choice(places))
        facts = row_facts(rng, index, who, home, number)
        rows.append(
            {
                column: _column_value(
                    fields, runs[column], facts, rng, lookups, like.get(column), service
                )
                for column, fields in by_column.items()
            }
        )
    return tuple(rows)
