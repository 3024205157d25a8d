"""Thai text from legacy systems: re-decoding mojibake, cleaning, splitting names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

__all__ = [
    "DEFAULT_TITLES",
    "NameParts",
    "arabic_digits",
    "as_text",
    "ascii_digits",
    "clean_text",
    "redecode_thai",
    "split_thai_name",
]

_THAI = re.compile("[\u0e00-\u0e7f]")

# Characters a cp1252 decoder (MySQL's "latin1") produces for bytes 0x80-0x9F.
# 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined in cp1252 and decode to "\ufffd" here.
_CP1252_BYTE = {
    ch: b for b in range(0x80, 0xA0) if (ch := bytes([b]).decode("cp1252", "replace")) != "\ufffd"
}


def _as_bytes(text: str) -> bytes | None:
    """Bytes a latin1/cp1252 decoder turned into `text`, or None if it can not be that."""
    out = bytearray()
    for ch in text:
        code = ord(ch)
        if code < 0x100:
            out.append(code)
        elif ch in _CP1252_BYTE:
            out.append(_CP1252_BYTE[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte kept by errors="surrogateescape"
            out.append(code - 0xDC00)
        else:
            return None
    return bytes(out)


def redecode_thai(value: object, *, source: str = "cp874") -> str | None:
    """Return legacy Thai text as proper Unicode.

    bytes: UTF-8 if they decode as UTF-8 and contain Thai, else `source`.
    str already holding Thai, or plain ASCII: returned unchanged.
    Other str: taken as `source` bytes that a driver decoded as latin1 or
    cp1252 (TIS-620 in a MySQL latin1 column); each char is mapped back to
    its byte and the bytes decoded as `source`. A str that can not be such
    mojibake is returned unchanged, so applying this twice equals once.

    Raises ValueError (UnicodeDecodeError) for bytes invalid in `source`.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            # Short cp874 byte runs can be valid UTF-8 by chance; Thai in the result settles it.
            if _THAI.search(text):
                return text
        return raw.decode(source)
    if not isinstance(value, str):
        raise TypeError(f"expected str or bytes, got {type(value).__name__}")
    if value.isascii() or _THAI.search(value):
        return value
    try:
        encoded: bytes | None = value.encode("latin-1")  # usual case: every char is one byte
    except UnicodeEncodeError:
        encoded = _as_bytes(value)  # cp1252 punctuation or surrogate-escaped bytes
    if encoded is None:
        return value
    try:
        return encoded.decode(source)
    except UnicodeDecodeError:
        return value  # not mojibake of `source` (e.g. a real "Müller"): leave it alone


_DROP = str.maketrans(
    dict.fromkeys(
        # Zero-width and invisible format chars, then C0 controls other than whitespace
        # (NUL padding from CHAR and dBase fields).
        [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x200E, 0x200F,
         *range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F]
    )
)
# Most legacy values have none of them: a search is cheaper than translating every
# character through the table.
_HAS_DROP = re.compile("[" + "".join(re.escape(chr(c)) for c in _DROP) + "]")
_TONES = "[\u0e48-\u0e4b]"
# Nikhahit + sara aa, with or without a tone mark between them, is a decomposed sara am.
_DECOMPOSED_AM = re.compile(f"\u0e4d({_TONES}?)\u0e32")
# A tone mark belongs before sara am; typed after it, it renders alike but compares unequal.
_TONE_AFTER_AM = re.compile(f"\u0e33({_TONES}+)")


def clean_text(value: object) -> str | None:
    """Remove invisible chars, NFC, compose sara am, collapse whitespace, strip.

    Bytes are decoded with redecode_thai first. Empty result gives None.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        value = redecode_thai(value)
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    if _HAS_DROP.search(value):
        value = value.translate(_DROP)
    text = unicodedata.normalize("NFC", value)
    if "\u0e4d" in text or "\u0e33" in text:  # what the two patterns start with
        fixed = _TONE_AFTER_AM.sub("\\1\u0e33", _DECOMPOSED_AM.sub("\\1\u0e33", text))
        if fixed is not text:  # re.sub returns its input when nothing matched
            # Removing nikhahit can bring marks together that NFC orders differently.
            text = unicodedata.normalize("NFC", fixed)
    # str.split() splits on every Unicode space (NBSP, thin space, ...), not only ASCII.
    return " ".join(text.split()) or None


def as_text(value: object) -> str:
    """Text form of a legacy value: bytes via redecode_thai, numbers via str, dates as ISO.

    An integral float loses its ".0": numeric dBase/Excel columns turn codes into floats.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return redecode_thai(value) or ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"expected text or a number, got {type(value).__name__}")


def ascii_digits(value: object) -> str | None:
    """Only the digits of as_text(value), Thai digits (๐-๙) as ASCII; None if there are none."""
    out = "".join(str(unicodedata.decimal(c)) for c in as_text(value) if c.isdecimal())
    return out or None


_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def arabic_digits(value: object) -> str | None:
    """as_text(value) with Thai digits as ASCII and everything else kept (house no. ๙๙/๑)."""
    return as_text(value).translate(_THAI_DIGITS) or None


DEFAULT_TITLES: tuple[str, ...] = (
    # Civilians and children
    "นาย", "นาง", "นางสาว", "น.ส.", "เด็กชาย", "เด็กหญิง", "ด.ช.", "ด.ญ.",
    # Acting officers
    "ว่าที่ร้อยตรี", "ว่าที่ร้อยโท", "ว่าที่ร้อยเอก", "ว่าที่ ร.ต.", "ว่าที่ ร.ท.", "ว่าที่ ร.อ.",
    # Army, navy and air force
    "พลเอก", "พลโท", "พลตรี", "พันเอก", "พันโท", "พันตรี", "ร้อยเอก", "ร้อยโท", "ร้อยตรี",
    "จ่าสิบเอก", "จ่าสิบโท", "จ่าสิบตรี", "สิบเอก", "สิบโท", "สิบตรี", "พลทหาร",
    "พล.อ.", "พล.ท.", "พล.ต.", "พ.อ.", "พ.ท.", "พ.ต.", "ร.อ.", "ร.ท.", "ร.ต.",
    "จ.ส.อ.", "จ.ส.ท.", "จ.ส.ต.", "ส.อ.", "ส.ท.", "ส.ต.", "พลฯ",
    "พล.ร.อ.", "พล.ร.ท.", "พล.ร.ต.", "น.อ.", "น.ท.", "น.ต.", "พ.จ.อ.", "พ.จ.ท.", "พ.จ.ต.",
    "จ.อ.", "จ.ท.", "จ.ต.", "พล.อ.อ.", "พล.อ.ท.", "พล.อ.ต.", "พ.อ.อ.", "พ.อ.ท.", "พ.อ.ต.",
    # Police
    "พลตำรวจเอก", "พลตำรวจโท", "พลตำรวจตรี", "พันตำรวจเอก", "พันตำรวจโท", "พันตำรวจตรี",
    "ร้อยตำรวจเอก", "ร้อยตำรวจโท", "ร้อยตำรวจตรี", "ดาบตำรวจ", "จ่าสิบตำรวจ",
    "สิบตำรวจเอก", "สิบตำรวจโท", "สิบตำรวจตรี", "พลตำรวจ",
    "พล.ต.อ.", "พล.ต.ท.", "พล.ต.ต.", "พ.ต.อ.", "พ.ต.ท.", "พ.ต.ต.", "ร.ต.อ.", "ร.ต.ท.", "ร.ต.ต.",
    "ด.ต.", "ส.ต.อ.", "ส.ต.ท.", "ส.ต.ต.", "พลฯ ตร.",
    # Professional, academic and royal
    "นายแพทย์", "แพทย์หญิง", "นพ.", "พญ.", "ทพ.", "ทพญ.", "ดร.", "ศ.", "รศ.", "ผศ.",
    "ศ.ดร.", "รศ.ดร.", "ผศ.ดร.", "ม.ร.ว.", "ม.ล.", "ม.จ.", "หม่อมราชวงศ์", "หม่อมหลวง",
    "หม่อมเจ้า", "คุณหญิง", "ท่านผู้หญิง",
    # English forms on foreigners' and bilingual records
    "Mr.", "Mrs.", "Miss", "Ms.", "Mr", "Mrs", "Ms", "Dr.", "Master",
)


@dataclass(frozen=True, slots=True)
class NameParts:
    title: str | None
    first: str | None
    middle: str | None
    last: str | None


def _title_pattern(title: str) -> str:
    # Spaces inside a title and after its dots are optional ("ว่าที่ร.ต.", "จ. ส. อ.").
    words = [re.escape(w).replace(r"\.", r"\.\s*") for w in title.split()]
    pattern = r"\s*".join(words)
    if pattern.endswith(r"\.\s*"):
        # A final dot is often dropped ("น.ส สมหญิง"); a space must then end the title.
        pattern = pattern[: -len(r"\.\s*")] + r"(?:\.\s*|\s+|$)"
    # A Latin title must end at a word boundary ("Miss" is not the start of "Missy").
    if title[-1].isascii() and title[-1].isalpha():
        pattern += "(?![A-Za-z])"
    return pattern


@lru_cache(maxsize=32)
def _title_regex(extra: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    titles = {t.strip() for t in (*DEFAULT_TITLES, *extra) if t.strip()}
    # Longest first, so that นางสาว wins over นาง and พ.ต.ท. over พ.ต.
    ordered = tuple(sorted(titles, key=lambda t: (-len(t.replace(" ", "")), t)))
    return _alternation(ordered), ordered


def _alternation(titles: Sequence[str]) -> re.Pattern[str]:
    """One pattern trying ``titles`` in order; group ``t<i>`` names which one matched."""
    return re.compile(
        "|".join(f"(?P<t{i}>{_title_pattern(t)})" for i, t in enumerate(titles)), re.IGNORECASE
    )


@lru_cache(maxsize=32)
def _title_index(
    extra: tuple[str, ...],
) -> dict[str, tuple[re.Pattern[str], tuple[str, ...]]]:
    """The titles by first letter, each group an alternation in the full one's order."""
    groups: dict[str, list[str]] = {}
    for title in _title_regex(extra)[1]:
        groups.setdefault(title[0].casefold(), []).append(title)
    return {first: (_alternation(titles), tuple(titles)) for first, titles in groups.items()}


def _match_title(text: str, extra: tuple[str, ...]) -> tuple[str | None, int]:
    """(title, where the rest of the name starts); a name is tried only against the
    titles that begin with its first letter, instead of all ~150 of them."""
    first = text[:1]
    if first.isascii() or "\u0e00" <= first <= "\u0e7f":
        group = _title_index(extra).get(first.casefold())
        if group is None:
            return None, 0
        regex, ordered = group
    else:  # other scripts: IGNORECASE may fold them onto a Latin title's first letter
        regex, ordered = _title_regex(extra)
    if (m := regex.match(text)) and m.lastgroup is not None:
        return ordered[int(m.lastgroup[1:])], m.end()
    return None, 0


def split_thai_name(value: str, extra_titles: Sequence[str] = ()) -> NameParts:
    """Split a full name into title, first, middle and last name.

    The title may be glued to the first name ("นายสมชาย ใจดี"). The last token
    is the last name, tokens between first and last form the middle name.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    text = clean_text(value) or ""
    title, end = _match_title(text, tuple(extra_titles))
    text = text[end:]
    tokens = text.split()
    if not tokens:
        return NameParts(title, None, None, None)
    if len(tokens) == 1:
        return NameParts(title, tokens[0], None, None)
    last_len = 1
    if len(tokens) >= 3 and tokens[-2] == "ณ":
        last_len = 2  # "ณ อยุธยา" and other ณ-surnames are one last name
    middle = " ".join(tokens[1:-last_len]) or None
    return NameParts(title, tokens[0], middle, " ".join(tokens[-last_len:]))
