"""The invisible-character table of clean_text, pinned character by character.

Each character it drops must vanish from between two Thai letters; each neighbour of those
code points (one above, one below) must stay, or, being a space, separate the letters.  A
name with a left-to-right mark left in it, or a real hyphen or tilde taken out, no longer
matches the person it names.
"""

from __future__ import annotations

import pytest

from gateway.transforms import clean_text

DROPPED = [
    *range(0x00, 0x09),  # C0 controls up to backspace (NUL padding of CHAR and dBase fields)
    *range(0x0E, 0x1C),  # the C0 controls after carriage return, up to escape
    0x7F,  # delete
    0x00AD,  # soft hyphen
    0x200B,  # zero width space
    0x200C,  # zero width non-joiner
    0x200D,  # zero width joiner
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    0x2060,  # word joiner
    0xFEFF,  # byte order mark, zero width no-break space
]
KEPT = {
    0x7E: "ก~ข",
    0x80: "ก\x80ข",
    0xAC: "ก¬ข",
    0xAE: "ก®ข",
    0x2010: "ก‐ข",  # a real hyphen
    0x2061: "ก\u2061ข",
    0xFEFE: "ก\ufefeข",
    0xFF00: "ก\uff00ข",
}
SPACES = [0x09, 0x0D, 0x1C, 0x200A, 0x205F]  # tab, carriage return, file separator, ...


@pytest.mark.parametrize("code", DROPPED, ids=hex)
def test_an_invisible_character_is_dropped(code: int) -> None:
    assert clean_text(f"ก{chr(code)}ข") == "กข"
    assert clean_text(f"{chr(code)}สมชาย{chr(code)}") == "สมชาย"


@pytest.mark.parametrize("code", sorted(KEPT), ids=hex)
def test_its_visible_neighbours_are_kept(code: int) -> None:
    assert clean_text(f"ก{chr(code)}ข") == KEPT[code]


@pytest.mark.parametrize("code", SPACES, ids=hex)
def test_its_space_neighbours_separate_words(code: int) -> None:
    assert clean_text(f"ก{chr(code)}ข") == "ก ข"


def test_the_table_is_exactly_these_characters() -> None:
    near = {c + d for c in DROPPED for d in (-1, 1)} - set(DROPPED) - {-1}
    assert near == set(KEPT) | set(SPACES)
