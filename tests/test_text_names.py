"""Names in other scripts than Thai and ASCII: tried against every title, split all the same."""

from __future__ import annotations

from gateway.transforms import split_thai_name


def test_a_name_in_another_script_is_split_without_a_title() -> None:
    for first, last in (("Élodie", "Martin"), ("Ǆemal", "Bijedić"), ("Ωμέγα", "Παπαδόπουλος")):
        parts = split_thai_name(f"{first} {last}")
        assert (parts.title, parts.first, parts.middle, parts.last) == (None, first, None, last)
