"""Allow lists and masks on nested objects: a sibling never leaks, a deep mask always holds."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.models import FieldConfig
from gateway.normalise import Mapper, compile_mapping
from gateway.policy import MASKS, PolicyConfigError, compile_policy
from tests.support import make_pid

ROW: dict[str, Any] = {
    "id": 1,
    "address": {
        "province": "ชลบุรี",
        "village": "3",
        "geo": {"lat": 13.36, "lon": 100.98},
    },
}


def _mapper() -> Mapper:
    return compile_mapping(
        {
            "id": FieldConfig(column="ID"),
            "address": FieldConfig.model_validate(
                {
                    "fields": {
                        "province": "PROV",
                        "village": "MOO",
                        "geo": {"fields": {"lat": "LAT", "lon": "LON"}},
                    }
                }
            ),
        },
        lookups={},
        titles=[],
    )


def _apply(allow: list[str] | None, mask: dict[str, str] | None = None) -> dict[str, Any]:
    policy = compile_policy(_mapper(), allow=allow, mask=mask or {}, path=())
    (out,) = policy.apply([ROW])
    return out


def test_a_nested_allow_entry_keeps_that_field_and_no_sibling() -> None:
    assert _apply(["address.province"]) == {"address": {"province": "ชลบุรี"}}
    assert _apply(["id", "address.geo.lat"]) == {"id": 1, "address": {"geo": {"lat": 13.36}}}
    # a wider entry wins over a narrower one, in either order
    assert _apply(["address.geo.lat", "address.geo"]) == {
        "address": {"geo": {"lat": 13.36, "lon": 100.98}}
    }
    assert _apply(["address", "address.village"]) == {"address": ROW["address"]}
    assert _apply(["address", "address.geo.lat"]) == {"address": ROW["address"]}
    assert _apply(["address.geo.lat", "address"]) == {"address": ROW["address"]}


def test_a_mask_outside_the_allow_list_opens_nothing() -> None:
    assert _apply(["address.province"], {"address.village": "null"}) == {
        "address": {"province": "ชลบุรี"}
    }


def test_the_citizen_id_mask_keeps_the_first_four_and_the_last_digit() -> None:
    pid = make_pid("370010045678")
    assert (
        MASKS["citizen_id"](pid) == f"{pid[0]}-{pid[1:5]}-xxxxx-xx-{pid[12]}" == "3-7001-xxxxx-xx-1"
    )


def test_a_mask_two_levels_deep_holds_under_a_narrower_allow_entry() -> None:
    assert _apply(["address.geo"], {"address.geo.lat": "null"}) == {
        "address": {"geo": {"lat": None, "lon": 100.98}}
    }
    assert _apply(None, {"address.geo.lon": "null"}) == {
        "id": 1,
        "address": {"province": "ชลบุรี", "village": "3", "geo": {"lat": 13.36, "lon": None}},
    }
    assert _apply(["address"], {"address.geo": "null"}) == {
        "address": {"province": "ชลบุรี", "village": "3", "geo": None}
    }


def test_a_path_that_is_not_in_the_output_is_named_in_the_error() -> None:
    def error(
        allow: list[str] | None, mask: dict[str, str] | None = None
    ) -> tuple[str, tuple[str | int, ...]]:
        with pytest.raises(PolicyConfigError) as info:
            compile_policy(_mapper(), allow=allow, mask=mask or {}, path=("fields", "fisher"))
        return str(info.value), info.value.path

    assert error(["id", "address.geo.lat.deg"]) == (
        "address.geo.lat is not a nested object",
        ("fields", "fisher", "allow", 1),
    )
    assert error(["id.x"])[0] == "id is not a nested object"
    assert error(["address.zip"])[0] == "address has no field 'zip'"
    assert error(["nope"])[0] == "the output has no field 'nope'"
    assert error(None, {"address": "year"}) == (
        "address is a nested object: only the null mask fits",
        ("fields", "fisher", "mask", "address"),
    )
    assert error(None, {"id": "blur"})[0].startswith("unknown mask 'blur'")
