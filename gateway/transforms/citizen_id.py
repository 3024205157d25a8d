"""Thai 13-digit citizen ID (เลขประจำตัวประชาชน, PID).

Validation is length + checksum only: the first digit encodes a person class
(0 = no registration status, 6-8 = foreigners/stateless, ...), and every class
is legitimate data, so rejecting by prefix belongs to a service rule, not here.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

__all__ = ["check_digit", "format_pid", "is_valid_pid", "mask_pid", "normalise_pid"]

_PID_LEN = 13
_WEIGHTS = (13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2)
_WEIGHT_SUM = sum(_WEIGHTS)  # what the ASCII offset of "0" adds to the unrolled sum
# The ASCII characters _strip_separators drops (categories Z, P and C), for its fast path.
_ASCII_SEPARATORS = str.maketrans(
    dict.fromkeys(c for c in range(128) if unicodedata.category(chr(c))[0] in "ZPC")
)


def _is_ascii_digits(s: str, length: int) -> bool:
    # str.isdigit alone accepts Thai and other Unicode digits; a stored PID must be ASCII.
    return len(s) == length and s.isascii() and s.isdigit()


def check_digit(first12: str) -> int:
    """Return d13 = (11 - sum(d_i * (14 - i), i = 1..12) mod 11) mod 10."""
    if not _is_ascii_digits(first12, 12):
        raise ValueError(f"expected 12 ASCII digits, got {first12!r}")
    # Unrolled over the ASCII codes: four times faster than summing map(int, ...), and
    # every call validates at least one ID (the query's, the officer's, the audit hint).
    d = first12.encode("ascii")
    total = (
        13 * d[0] + 12 * d[1] + 11 * d[2] + 10 * d[3] + 9 * d[4] + 8 * d[5]
        + 7 * d[6] + 6 * d[7] + 5 * d[8] + 4 * d[9] + 3 * d[10] + 2 * d[11]
    ) - 48 * _WEIGHT_SUM
    return (11 - total % 11) % 10


def is_valid_pid(s: object) -> bool:
    """True for exactly 13 ASCII digits with a correct check digit (False for a non-string)."""
    if not isinstance(s, str) or not _is_ascii_digits(s, _PID_LEN):
        return False
    return check_digit(s[:12]) == int(s[12])


def _strip_separators(text: str) -> str:
    if text.isascii():  # the usual legacy spelling: one translate instead of a loop
        digits = text.translate(_ASCII_SEPARATORS)
        if not digits or digits.isdigit():
            return digits
    out: list[str] = []
    for ch in text:
        if ch.isdecimal():
            # Thai digits (๐-๙) occur in hand-typed legacy columns.
            out.append(str(unicodedata.decimal(ch)))
            continue
        cat = unicodedata.category(ch)
        # Z* = spaces, P* = dashes/dots/slashes, C* = NUL padding and zero-width marks.
        if cat[0] in "ZPC":
            continue
        raise ValueError(f"unexpected character {ch!r} in citizen ID")
    return "".join(out)


def normalise_pid(value: object) -> str | None:
    """Return the 13 ASCII digits of a PID as stored in a legacy column.

    Accepts str, bytes or an integer. Separators (dashes, spaces, dots, CHAR or
    NUL padding) are dropped; blank or None gives None. An integer (or an
    integral float/Decimal from a numeric dBase/Excel column) is left-padded
    with zeros, because a class-0 PID stored as a number has lost its leading
    zero. The checksum is NOT checked here: use is_valid_pid for that.

    Raises ValueError when the value does not hold exactly 13 digits.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a bool is not a citizen ID")
    if isinstance(value, int | float | Decimal):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"not an integral number: {value!r}")
        if isinstance(value, Decimal) and (
            not value.is_finite() or value != value.to_integral_value()
        ):
            raise ValueError(f"not an integral number: {value!r}")
        number = int(value)
        if number < 0:
            raise ValueError("a citizen ID can not be negative")
        digits = str(number).zfill(_PID_LEN)
    elif isinstance(value, bytes | bytearray | memoryview):
        # cp874 keeps Thai digits readable; undecodable bytes become U+FFFD and are rejected.
        digits = _strip_separators(bytes(value).decode("cp874", errors="replace"))
    elif isinstance(value, str):
        digits = _strip_separators(value)
    else:
        raise TypeError(f"unsupported citizen ID type {type(value).__name__}")
    if not digits:
        return None
    if len(digits) != _PID_LEN:
        raise ValueError(f"a citizen ID has 13 digits, got {len(digits)}")
    return digits


def format_pid(pid13: str) -> str:
    """Format as printed on the ID card: 1-2345-67890-12-1."""
    if not _is_ascii_digits(pid13, _PID_LEN):
        raise ValueError(f"expected 13 ASCII digits, got {pid13!r}")
    p = pid13
    return f"{p[0]}-{p[1:5]}-{p[5:10]}-{p[10:12]}-{p[12]}"


def mask_pid(pid13: str) -> str:
    """Mask for logs and audit screens, keeping the first and last two digits: 1-xxxx-xxxxx-x2-1."""
    if not _is_ascii_digits(pid13, _PID_LEN):
        raise ValueError(f"expected 13 ASCII digits, got {pid13!r}")
    return f"{pid13[0]}-xxxx-xxxxx-x{pid13[11]}-{pid13[12]}"
