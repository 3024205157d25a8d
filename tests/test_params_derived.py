"""The extra spellings a citizen-ID parameter binds, for a value, for none, and for other kinds."""

from __future__ import annotations

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
