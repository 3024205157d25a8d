"""Parameter validators compiled from YAML: the values they bind and the reasons they give."""

from __future__ import annotations

import pytest

from gateway.config.models import ParamConfig
from gateway.params import compile_param
from tests.support import make_pid

PID = make_pid("310050123456")


def parse(cfg: dict[str, object], raw: str) -> object:
    return compile_param("p", ParamConfig.model_validate(cfg)).parse(raw)


def reason(cfg: dict[str, object], raw: str) -> str:
    with pytest.raises(ValueError) as info:
        parse(cfg, raw)
    return str(info.value)


def test_citizen_id_binds_plain_or_dashed_and_offers_every_spelling() -> None:
    assert parse({"type": "citizen_id"}, PID) == PID
    assert parse({"type": "citizen_id", "bind": "dashed"}, PID) == (
        f"{PID[0]}-{PID[1:5]}-{PID[5:10]}-{PID[10:12]}-{PID[12]}"
    )
    spec = compile_param("personalId", ParamConfig(type="citizen_id"))
    assert spec.bind_names == (
        "personalId",
        "personalId__dashed",
        "personalId__spaced",
        "personalId__padded",
    )
    forms = spec.derived(PID)
    assert forms["personalId__spaced"] == f"{PID[0]} {PID[1:5]} {PID[5:10]} {PID[10:12]} {PID[12]}"
    assert forms["personalId__padded"] == PID + " " * 4
    assert spec.audit == "hash"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("123", "must be exactly 13 digits"),
        (PID[:12] + str((int(PID[12]) + 1) % 10), "checksum digit is wrong"),
        ("๓๑๐๐๕๐๑๒๓๔๕๖๗", "must be exactly 13 digits"),
        (f" {PID}", "must be exactly 13 digits"),
    ],
)
def test_citizen_id_reasons(raw: str, why: str) -> None:
    assert reason({"type": "citizen_id"}, raw) == why


def test_string_rules() -> None:
    cfg = {"type": "string", "min_length": 2, "max_length": 5, "pattern": "[A-Z0-9]+"}
    assert parse(cfg, "AB12") == "AB12"
    assert reason(cfg, "A") == "length must be 2..5 characters"
    assert reason(cfg, "ab") == "must match [A-Z0-9]+"
    assert reason({"type": "string", "choices": ["A", "C"]}, "B") == "must be one of: A, C"
    assert compile_param("p", ParamConfig(type="string")).audit == "clear"


def test_integer_rules() -> None:
    cfg = {"type": "integer", "minimum": 1, "maximum": 12}
    assert parse(cfg, "7") == 7
    assert reason(cfg, "0") == "must be >= 1"
    assert reason(cfg, "13") == "must be <= 12"
    assert reason(cfg, "7.0") == "must be an integer"
    assert reason(cfg, "1e3") == "must be an integer"


def test_dates_in_either_era_bound_as_the_backend_wants() -> None:
    assert parse({"type": "date"}, "2024-02-29") == "2024-02-29"
    assert parse({"type": "date", "era": "be"}, "25670229") == "2024-02-29"
    assert (
        parse({"type": "date", "era": "be", "date_bind": "be_yyyymmdd"}, "2567-02-29") == "25670229"
    )
    assert parse({"type": "date", "date_bind": "ce_yyyymmdd"}, "2024-01-05") == "20240105"
    assert (
        reason({"type": "date"}, "2023-02-29")
        == "is not a real calendar date (YYYY-MM-DD or YYYYMMDD)"
    )
    assert "Buddhist Era" in reason({"type": "date", "era": "be"}, "15/01/2567")


def test_audit_mode_can_be_overridden() -> None:
    spec = compile_param("name", ParamConfig(type="string", audit="omit"))
    assert spec.audit == "omit"
