"""Citizen IDs stored as numbers, at the edge: zero is thirteen zeros, below zero is refused."""

from __future__ import annotations

import pytest

from gateway.transforms import normalise_pid


def test_zero_is_thirteen_zeros_and_a_negative_number_is_refused() -> None:
    assert normalise_pid(0) == "0000000000000"
    assert normalise_pid(0.0) == "0000000000000"
    with pytest.raises(ValueError, match="can not be negative"):
        normalise_pid(-1)
