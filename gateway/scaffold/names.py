"""Output names: DOPA's camelCase data-dictionary names where a legacy column's meaning is
recognised from its name, the legacy name in camelCase otherwise."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["camel", "description_name", "dopa_name"]

# (pattern over the lower-cased legacy name, DOPA name); first match wins
_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(p), n)
    for p, n in (
        (r"^(father_?(pid|id|personal_?id))$", "fatherPersonalID"),
        (r"^(mother_?(pid|id|personal_?id))$", "motherPersonalID"),
        (r"(birth|^dob$|^bdate$|^born)", "dateOfBirth"),
        (r"^(date_?of_?)?move_?in(_?date)?$", "dateOfMoveIn"),
        (r"^(sex|gender)(_?code|_?cd)?$", "genderCode"),
        (r"^(title|prefix|pre_?name|tname|title_?name)(_?desc)?$", "titleDesc"),
        (r"^(f_?name|first_?name|given_?name|name_?first)$", "firstName"),
        (r"^(m_?name|middle_?name)$", "middleName"),
        (r"^(l_?name|last_?name|sur_?name|family_?name)$", "lastName"),
        (r"^(e_?f_?name|eng_?first_?name|first_?name_?en)$", "englishFirstName"),
        (r"^(e_?l_?name|eng_?last_?name|last_?name_?en)$", "englishLastName"),
        (r"^(prov|province|changwat|chw)(_?code|_?cd|_?id)?$", "provinceCode"),
        (r"^(amphur|amphoe|amp|district|dist)(_?code|_?cd|_?id)?$", "districtCode"),
        (r"^(tambon|tumbon|tam|sub_?district)(_?code|_?cd|_?id)?$", "subdistrictCode"),
        (r"^(prov|province|changwat)_?(name|desc)$", "provinceDesc"),
        (r"^(amphur|amphoe|district)_?(name|desc)$", "districtDesc"),
        (r"^(tambon|tumbon|sub_?district)_?(name|desc)$", "subdistrictDesc"),
        (r"^(house_?no|home_?no|addr_?no|hno)$", "houseNo"),
        (r"^(moo|village_?no|mu)$", "villageNo"),
        (r"^(soi|alley)(_?name)?$", "alleyDesc"),
        (r"^(trok|alley_?way)(_?name)?$", "alleyWayDesc"),
        (r"^(road|street|thanon)(_?name)?$", "roadDesc"),
        (r"^(nation|nationality)(_?code|_?cd)?$", "nationalityCode"),
        (r"^(status|person_?status)(_?code|_?cd)?$", "statusCode"),
        (r"^reg(istration|ist)?_?date$", "registrationDate"),
    )
)


def camel(legacy: str) -> str:
    """REG_NO -> regNo, FarmName -> farmName: the legacy name, as JSON names are spelled."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", legacy) if p]
    if not parts:
        return "field"
    if len(parts) == 1 and not parts[0].isupper():
        word = parts[0]
        return word[0].lower() + word[1:]
    head, *rest = (p.lower() for p in parts)
    name = head + "".join(w.capitalize() for w in rest)
    return name if name[0].isalpha() else f"f{name}"


def dopa_name(legacy: str) -> str | None:
    """DOPA's name for a column whose legacy name says what it holds, else None."""
    low = legacy.lower()
    for pattern, name in _RULES:
        if pattern.search(low):
            return name
    return None


def description_name(code_name: str) -> str:
    """The field that carries a code's description: provinceCode -> provinceDesc."""
    base = code_name.removesuffix("Code")
    return f"{base}Desc"
