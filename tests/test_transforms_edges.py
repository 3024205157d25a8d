"""Transform chains at their edges: the rounding precision, the transform named in an error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.transforms import TransformConfigError, compile_chain


def test_rounding_keeps_sixty_digits_and_refuses_more() -> None:
    two_places = compile_chain([{"decimal": {"places": 2}}])
    assert two_places("1" * 58) == float("1" * 58)  # 60 digits with the two places
    with pytest.raises(ValueError, match="too large to round"):
        two_places("1" * 59)


def test_a_config_error_names_the_transform_and_where_it_is() -> None:
    with pytest.raises(TransformConfigError) as info:
        compile_chain(["trim", {"decimal": {"places": "x"}}])
    assert str(info.value).startswith("transform [1/decimal/places]: decimal: places must be")


def test_a_numeric_code_with_a_zero_fraction_finds_its_lookup_entry() -> None:
    gender = compile_chain([{"lookup": "gender"}], lookups={"gender": {"1": "ชาย", "2": "หญิง"}})
    assert gender(Decimal("1.0")) == "ชาย" and gender(Decimal("2")) == "หญิง"


def test_not_a_finite_number_is_refused_by_name() -> None:
    for value in ("NaN", "Infinity", Decimal("-Infinity")):
        with pytest.raises(ValueError, match="not a finite number"):
            compile_chain(["float"])(value)


def test_substr_takes_a_start_up_to_a_million() -> None:
    assert compile_chain([{"substr": {"start": 1_000_000}}])("abc") == ""
    with pytest.raises(TransformConfigError, match="start"):
        compile_chain([{"substr": {"start": 1_000_001}}])
