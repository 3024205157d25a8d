"""Parameters at their edges: the extra spellings of a citizen ID, inclusive bounds."""

from __future__ import annotations

import pytest

from gateway.config.models import ParamConfig
from gateway.params import compile_param
from tests.support import make_pid

PID = make_pid("310050123456")


def test_a_missing_citizen_id_binds_null_in_every_spelling() -> None:
    spec = compile_param("personalId", ParamConfig(type="citizen_id", required=False))
    assert spec.derived(None) == {
        "personalId__dashed": None,
        "personalId__spaced": None,
        "personalId__padded": None,
    }


def test_a_dashed_value_gives_the_same_spellings_as_a_plain_one() -> None:
    spec = compile_param("personalId", ParamConfig(type="citizen_id"))
    dashed = f"{PID[0]}-{PID[1:5]}-{PID[5:10]}-{PID[10:12]}-{PID[12]}"
    assert (
        spec.derived(dashed)
        == spec.derived(PID)
        == {
            "personalId__dashed": dashed,
            "personalId__spaced": dashed.replace("-", " "),
            "personalId__padded": PID + "    ",
        }
    )


def test_other_parameters_bind_nothing_more() -> None:
    for cfg in (ParamConfig(type="string"), ParamConfig(type="integer")):
        spec = compile_param("n", cfg)
        assert spec.bind_names == ("n",)
        assert spec.derived("12") == {} and spec.derived(None) == {}


def _parse(cfg: dict[str, object], raw: str) -> object:
    return compile_param("p", ParamConfig.model_validate(cfg)).parse(raw)


def test_bounds_are_inclusive() -> None:
    length = {"type": "string", "min_length": 2, "max_length": 4}
    assert _parse(length, "ab") == "ab" and _parse(length, "abcd") == "abcd"
    for raw in ("a", "abcde"):
        with pytest.raises(ValueError, match=r"length must be 2\.\.4"):
            _parse(length, raw)
    integer = {"type": "integer", "minimum": 1, "maximum": 9}
    assert _parse(integer, "1") == 1 and _parse(integer, "9") == 9
    with pytest.raises(ValueError, match="must be >= 1"):
        _parse(integer, "0")
    with pytest.raises(ValueError, match="must be <= 9"):
        _parse(integer, "10")


def test_what_the_audit_keeps_of_a_value_by_default() -> None:
    def audit(**cfg: object) -> str:
        return compile_param("p", ParamConfig.model_validate(cfg)).audit

    assert audit(type="citizen_id") == "hash"  # personal data: only its keyed hash
    assert audit(type="string") == "clear" and audit(type="integer") == "clear"
    assert audit(type="citizen_id", audit="clear") == "clear"
    assert audit(type="string", audit="omit") == "omit"
