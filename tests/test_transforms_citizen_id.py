from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.transforms import check_digit, format_pid, is_valid_pid, mask_pid, normalise_pid

# Sums worked by hand: 123456789012 -> 352 = 32*11, so d13 = (11 - 0) % 10 = 1;
# 310060012345 -> 155 = 14*11 + 1, so d13 = (11 - 1) % 10 = 0 (the mod-10 wrap).
VALID = "1234567890121"


@pytest.mark.parametrize(
    ("first12", "expected"),
    [
        ("123456789012", 1),
        ("310060012345", 0),
        ("000000000000", 1),
        ("110170023070", 8),
    ],
)
def test_check_digit(first12: str, expected: int) -> None:
    assert check_digit(first12) == expected


@pytest.mark.parametrize(
    "bad", ["12345678901", "1234567890123", "12345678901x", "๑๒๓๔๕๖๗๘๙๐๑๒", ""]
)
def test_check_digit_rejects_non_12_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


@pytest.mark.parametrize(
    "pid",
    [
        VALID,
        "3100600123450",
        "1101700230708",
        # Every person class is valid data: 0 = no registration status, 6-8 = foreigners.
        "0123456789016",
        "6123456789015",
        "7123456789013",
        "8123456789011",
    ],
)
def test_is_valid_pid_accepts_any_first_digit(pid: str) -> None:
    assert is_valid_pid(pid)


@pytest.mark.parametrize(
    "pid",
    ["1234567890122", "123456789012", "12345678901211", "1-2345-67890-12-1", " 1234567890121",
     "๑๒๓๔๕๖๗๘๙๐๑๒๑", ""],
)
def test_is_valid_pid_rejects(pid: str) -> None:
    assert not is_valid_pid(pid)


def test_is_valid_pid_rejects_non_strings() -> None:
    assert not is_valid_pid(1234567890121)


@pytest.mark.parametrize(
    "raw",
    [
        "1234567890121",
        "1-2345-67890-12-1",
        "1 2345 67890 12 1",
        "1234567890121      ",  # CHAR(20) padding
        "  1-2345-67890-12-1\t",
        "1.2345.67890.12.1",
        "1/2345/67890/12/1",
        "1–2345–67890–12–1",  # en dashes pasted from a word processor
        "1234567890121\x00\x00\x00",  # NUL-padded dBase field
        "\u200b1234567890121",
        "๑๒๓๔๕๖๗๘๙๐๑๒๑",  # Thai digits
        b"1234567890121  ",
        b"1-2345-67890-12-1",
        bytearray(b"1234567890121"),
        1234567890121,
        1234567890121.0,  # numeric column in an Excel/dBase export
        Decimal("1234567890121"),
    ],
)
def test_normalise_pid_forms(raw: object) -> None:
    assert normalise_pid(raw) == VALID


def test_normalise_pid_integer_keeps_class_zero() -> None:
    # A class-0 PID in a numeric column has lost its leading zero.
    assert normalise_pid(123456789016) == "0123456789016"


@pytest.mark.parametrize("blank", [None, "", "   ", "-", b"", b"    ", "\x00\x00"])
def test_normalise_pid_blank_is_none(blank: object) -> None:
    assert normalise_pid(blank) is None


@pytest.mark.parametrize(
    "bad",
    ["123456789012", "12345678901212", "1-2345-67890-12-1x", "ID1234567890121", "1234567890121.5",
     -1234567890121, 1234567890121.5, Decimal("NaN"), Decimal("1234567890121.5"), float("inf"),
     b"\xff1234567890121"],
)
def test_normalise_pid_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        normalise_pid(bad)


@pytest.mark.parametrize("bad", [True, 1.5j, [1, 2], object()])
def test_normalise_pid_rejects_types(bad: object) -> None:
    with pytest.raises(TypeError):
        normalise_pid(bad)


def test_normalise_pid_does_not_check_the_checksum() -> None:
    assert normalise_pid("1-2345-67890-12-2") == "1234567890122"


def test_format_pid() -> None:
    assert format_pid(VALID) == "1-2345-67890-12-1"
    assert format_pid("0123456789016") == "0-1234-56789-01-6"


def test_mask_pid() -> None:
    assert mask_pid(VALID) == "1-xxxx-xxxxx-x2-1"
    assert mask_pid("3100600123450") == "3-xxxx-xxxxx-x5-0"


@pytest.mark.parametrize("bad", ["1-2345-67890-12-1", "123456789012", "123456789012a", ""])
def test_format_and_mask_need_13_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        format_pid(bad)
    with pytest.raises(ValueError):
        mask_pid(bad)
