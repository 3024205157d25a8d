"""The normalise stage's mapper: shared leading transforms give what each field's own
chain gives, whatever the values and however the driver spells the columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.models import FieldConfig
from gateway.normalise import Mapper, compile_mapping
from tests.support import PEOPLE

LOOKUPS = {"sex": {"1": "ชาย", "2": "หญิง"}}
NAME = ["cp874", "clean"]
OUTPUT: dict[str, Any] = {
    "titleDesc": {"column": "FULLNAME", "transform": [*NAME, {"name": "title"}]},
    "firstName": {"column": "FULLNAME", "transform": [*NAME, {"name": "first"}]},
    "lastName": {"column": "FULLNAME", "transform": [*NAME, {"name": "last"}]},
    "fullName": {"column": "FULLNAME", "transform": NAME},
    "person": {
        "fields": {
            "moo": {"column": "MOO", "transform": ["trim", "int"]},
            "mooText": {"column": "MOO", "transform": ["trim", {"zfill": 3}]},
        }
    },
    "genderDesc": {"column": "SEX", "transform": ["trim", {"lookup": "sex"}]},
    "genderCode": {"column": "sex", "transform": ["trim"]},
    "birth": {"column": "BIRTH_DATE", "transform": ["be_date"]},
}


def _compile(output: Mapping[str, Any]) -> Mapper:
    fields = {name: FieldConfig.model_validate(cfg) for name, cfg in output.items()}
    return compile_mapping(fields, lookups=LOOKUPS, titles=[])


def _one_by_one(
    output: Mapping[str, Any], row: dict[str, object]
) -> tuple[dict[str, Any], list[str]]:
    """Each field mapped by a mapper of its own: nothing shared."""
    out: dict[str, Any] = {}
    failed: list[str] = []
    for name, cfg in output.items():
        if "fields" in cfg:
            inner, bad = _one_by_one(cfg["fields"], row)
            out[name] = inner
            failed += bad
            continue
        result = _compile({name: cfg}).map_rows([row])
        out[name] = result.rows[0][name]
        failed += result.failed_fields
    return out, failed


def test_fields_on_one_column_share_their_leading_transforms() -> None:
    mapper = _compile(OUTPUT)
    # cp874+clean on FULLNAME (4 fields), trim on MOO (2), trim on SEX (2)
    assert len(mapper.shared) == 3
    row = {"FULLNAME": PEOPLE[0]["FULLNAME"], "MOO": " 7", "SEX": "1 ", "BIRTH_DATE": "25300000"}
    result = mapper.map_rows([row])
    assert (result.rows[0], result.failed_fields) == _one_by_one(OUTPUT, row)
    assert result.rows[0]["person"] == {"moo": 7, "mooText": "007"}


legacy = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from([p["FULLNAME"] for p in PEOPLE]),
    st.sampled_from(["", "  ", "0", "12", "x", "25300000"]),
    st.binary(max_size=8),
    st.integers(-5, 5),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fullname=legacy,
    moo=legacy,
    sex=legacy,
    birth=legacy,
    lower=st.booleans(),
)
def test_sharing_changes_no_value_and_no_failure(
    fullname: object, moo: object, sex: object, birth: object, lower: bool
) -> None:
    row: dict[str, object] = {"FULLNAME": fullname, "MOO": moo, "SEX": sex, "BIRTH_DATE": birth}
    if lower:  # PostgreSQL folds unquoted names
        row = {k.lower(): v for k, v in row.items()}
    result = _compile(OUTPUT).map_rows([row, row])
    expected = _one_by_one(OUTPUT, row)
    assert result.rows == [expected[0], expected[0]]
    assert result.failed_fields == expected[1] * 2


def test_a_missing_column_fails_every_field_that_reads_it() -> None:
    result = _compile(OUTPUT).map_rows([{"MOO": "1", "SEX": "2", "BIRTH_DATE": None}])
    assert result.failed_fields == ["titleDesc", "firstName", "lastName", "fullName"]
    assert result.rows[0]["firstName"] is None and result.rows[0]["genderDesc"] == "หญิง"
