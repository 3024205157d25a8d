"""Transform chains at their edges: the rounding precision, the transform named in an error."""

from __future__ import annotations

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
