"""Text transforms at their edges: names in other scripts, bytes a driver escaped, bad types."""

from __future__ import annotations

import pytest

from gateway.transforms import clean_text, redecode_thai, split_thai_name


def test_a_name_in_another_script_is_split_without_a_title() -> None:
    for first, last in (("Élodie", "Martin"), ("Ǆemal", "Bijedić"), ("Ωμέγα", "Παπαδόπουλος")):
        parts = split_thai_name(f"{first} {last}")
        assert (parts.title, parts.first, parts.middle, parts.last) == (None, first, None, last)


def test_bytes_kept_by_surrogateescape_are_decoded_up_to_the_last_one() -> None:
    assert redecode_thai("\udcff", source="cp1252") == "ÿ"  # byte 0xFF
    assert redecode_thai("\udc80", source="cp1252") == "€"  # byte 0x80


def test_text_that_can_not_be_mojibake_is_left_alone() -> None:
    assert redecode_thai("Ābc") == "Ābc"  # U+0100 is no byte of any single-byte decoding


def test_clean_text_names_a_wrong_type() -> None:
    with pytest.raises(TypeError, match="expected str, got int"):
        clean_text(12)


def test_a_latin_title_with_its_dot_may_be_glued_to_the_name() -> None:
    parts = split_thai_name("Dr.Somchai Jaidee")
    assert (parts.title, parts.first, parts.last) == ("Dr.", "Somchai", "Jaidee")
    parts = split_thai_name("Missy Jones")  # a title without a dot must end at the word
    assert (parts.title, parts.first, parts.last) == (None, "Missy", "Jones")
