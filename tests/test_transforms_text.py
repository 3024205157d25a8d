from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.transforms import (
    NameParts,
    as_text,
    ascii_digits,
    clean_text,
    redecode_thai,
    split_thai_name,
)

NAME = "นายสมชาย ใจดี"
# Curly quotes, the euro sign and the ellipsis are cp874 bytes 0x80-0x9F, where
# latin1 and cp1252 decoders differ.
RICH = "นางสาวสมหญิง รักไทย “น้ำใจ” ค่าธรรมเนียม €5 … ๑๒๓"
ADDRESS = "๙๙/๑ หมู่ ๓ ต.บางพลีใหญ่ อ.บางพลี จ.สมุทรปราการ"


def latin1_mojibake(text: str) -> str:
    """What a driver returns for TIS-620 bytes in a latin1 (ISO 8859-1) column."""
    return text.encode("cp874").decode("latin1")


def cp1252_mojibake(text: str, errors: str = "strict") -> str:
    """What MySQL's "latin1" (really cp1252) column gives for TIS-620 bytes."""
    return text.encode("cp874").decode("cp1252", errors=errors)


@pytest.mark.parametrize("text", [NAME, RICH, ADDRESS, "เด็กหญิงน้ำฝน ฟ้าใส", "ฐานข้อมูล ฿1,000"])
def test_bytes_in_cp874(text: str) -> None:
    raw = text.encode("cp874")
    assert redecode_thai(raw) == text
    assert redecode_thai(bytearray(raw)) == text
    assert redecode_thai(memoryview(raw)) == text


def test_tis620_bytes() -> None:
    # TIS-620 is cp874 without the 0x80-0x9F punctuation.
    assert redecode_thai(ADDRESS.encode("tis-620")) == ADDRESS


@pytest.mark.parametrize("text", [NAME, RICH, ADDRESS])
def test_bytes_in_utf8(text: str) -> None:
    assert redecode_thai(text.encode("utf-8")) == text


def test_utf8_without_thai_is_read_as_cp874() -> None:
    # b"\xc3\xa1" is valid UTF-8 ("á") but, with no Thai in it, the cp874 reading wins.
    assert redecode_thai(b"\xc3\xa1") == "รก"


def test_ascii_bytes() -> None:
    assert redecode_thai(b"ABC 123") == "ABC 123"


def test_bytes_undecodable_in_cp874_raise_value_error() -> None:
    with pytest.raises(ValueError):
        redecode_thai(b"\xfc\xfd\xfe\xff")


@pytest.mark.parametrize("text", [NAME, RICH, ADDRESS])
def test_latin1_mojibake(text: str) -> None:
    garbled = latin1_mojibake(text)
    assert garbled != text
    assert redecode_thai(garbled) == text


@pytest.mark.parametrize("errors", ["strict", "replace", "surrogateescape"])
@pytest.mark.parametrize("text", [NAME, RICH, ADDRESS])
def test_cp1252_mojibake(text: str, errors: str) -> None:
    garbled = cp1252_mojibake(text, errors)
    assert redecode_thai(garbled) == text


def test_cp1252_and_latin1_really_differ_for_quotes() -> None:
    assert latin1_mojibake("“") == "\x93"
    assert cp1252_mojibake("“") == "“"
    assert latin1_mojibake("“ก”") == "\x93¡\x94"
    assert cp1252_mojibake("“ก”") == "“¡”"
    assert redecode_thai("\x93¡\x94") == redecode_thai("“¡”") == "“ก”"


def test_surrogate_escaped_bytes() -> None:
    assert redecode_thai("\udcb9\udcd2\udcc2") == "นาย"


@pytest.mark.parametrize(
    "text", [NAME, RICH, "plain ASCII", "", "中文", "Müller", "Ñandú Œuvre", "mixed ก with Ã"],
)
def test_unchanged_when_not_mojibake(text: str) -> None:
    # Thai already present, ASCII, or characters that no latin1/cp1252 byte or cp874 decode gives.
    assert redecode_thai(text) == text


@pytest.mark.parametrize(
    "value",
    [NAME, latin1_mojibake(RICH), cp1252_mojibake(ADDRESS), "Müller", "\x80\x85\xa0", "€…"],
)
def test_redecode_is_idempotent(value: str) -> None:
    once = redecode_thai(value)
    assert redecode_thai(once) == once


def test_redecode_other_source() -> None:
    # UTF-8 Thai stored in a latin1 column: the same repair with source="utf-8".
    assert redecode_thai(NAME.encode().decode("cp1252", errors="surrogateescape"),
                         source="utf-8") == NAME
    assert redecode_thai(latin1_mojibake(NAME), source="tis-620") == NAME


def test_redecode_none_and_types() -> None:
    assert redecode_thai(None) is None
    with pytest.raises(TypeError):
        redecode_thai(123)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  สมชาย   ใจดี  ", "สมชาย ใจดี"),
        ("สม\u200bชาย", "สมชาย"),
        ("\ufeffสมชาย\u200c\u200d\u2060", "สมชาย"),
        ("สม\u00adชาย", "สมชาย"),
        ("สมชาย\u00a0ใจดี", "สมชาย ใจดี"),
        ("สมชาย\u2003\u2009\u202fใจดี", "สมชาย ใจดี"),
        ("สมชาย\t\r\nใจดี", "สมชาย ใจดี"),
        ("สมชาย\x00\x00\x00", "สมชาย"),
        ("น\u0e4d\u0e32", "นำ"),  # nikhahit + sara aa = sara am
        ("น\u0e49\u0e4d\u0e32", "น\u0e49\u0e33"),  # tone, nikhahit, sara aa
        ("น\u0e4d\u0e49\u0e32", "น\u0e49\u0e33"),  # nikhahit, tone, sara aa
        ("น\u0e33\u0e49", "น\u0e49\u0e33"),  # tone typed after sara am
        ("ก\u0e4d\u0e32ลัง ท\u0e4d\u0e32งาน", "กำลัง ทำงาน"),
        ("e\u0301", "é"),  # NFC
        ("ABC", "ABC"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize("blank", [None, "", "   ", "\u200b", "\u00a0\ufeff\t"])
def test_clean_text_blank_is_none(blank: str | None) -> None:
    assert clean_text(blank) is None


def test_clean_text_decodes_bytes_and_rejects_other_types() -> None:
    assert clean_text(" สมชาย ".encode("cp874")) == "สมชาย"
    with pytest.raises(TypeError):
        clean_text(12)


@pytest.mark.parametrize(
    "raw", ["  น\u0e4d\u0e49\u0e32  ", "a\u0e33\u0e48\u0e48b", "\u0e4d\u0e48\u0e32\u0e48", RICH],
)
def test_clean_text_is_idempotent(raw: str) -> None:
    once = clean_text(raw)
    assert clean_text(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("นายสมชาย ใจดี", NameParts("นาย", "สมชาย", None, "ใจดี")),
        ("นาย สมชาย ใจดี", NameParts("นาย", "สมชาย", None, "ใจดี")),
        ("นางสาวสมหญิง  รักไทย", NameParts("นางสาว", "สมหญิง", None, "รักไทย")),
        ("นางสมศรี มีสุข", NameParts("นาง", "สมศรี", None, "มีสุข")),
        ("น.ส.สมหญิง รักไทย", NameParts("น.ส.", "สมหญิง", None, "รักไทย")),
        ("น.ส สมหญิง รักไทย", NameParts("น.ส.", "สมหญิง", None, "รักไทย")),
        ("ด.ช.สมปอง มีสุข", NameParts("ด.ช.", "สมปอง", None, "มีสุข")),
        ("ด.ญ.สมใจ มีสุข", NameParts("ด.ญ.", "สมใจ", None, "มีสุข")),
        ("เด็กชายสมปอง มีสุข", NameParts("เด็กชาย", "สมปอง", None, "มีสุข")),
        ("เด็กหญิงสมใจ มีสุข", NameParts("เด็กหญิง", "สมใจ", None, "มีสุข")),
        ("ว่าที่ร้อยตรีสมศักดิ์ กล้าหาญ", NameParts("ว่าที่ร้อยตรี", "สมศักดิ์", None, "กล้าหาญ")),
        ("ว่าที่ร.ต.สมศักดิ์ กล้าหาญ", NameParts("ว่าที่ ร.ต.", "สมศักดิ์", None, "กล้าหาญ")),
        ("จ.ส.อ.สมหมาย ทองดี", NameParts("จ.ส.อ.", "สมหมาย", None, "ทองดี")),
        ("จ. ส. อ. สมหมาย ทองดี", NameParts("จ.ส.อ.", "สมหมาย", None, "ทองดี")),
        ("พ.ต.ท.สมยศ เก่งกล้า", NameParts("พ.ต.ท.", "สมยศ", None, "เก่งกล้า")),
        ("พ.ต.สมยศ เก่งกล้า", NameParts("พ.ต.", "สมยศ", None, "เก่งกล้า")),
        ("ร.ต.อ.สมยศ เก่งกล้า", NameParts("ร.ต.อ.", "สมยศ", None, "เก่งกล้า")),
        ("นายแพทย์สมชาย ใจดี", NameParts("นายแพทย์", "สมชาย", None, "ใจดี")),
        ("Mr.John Smith", NameParts("Mr.", "John", None, "Smith")),
        ("MR. JOHN SMITH", NameParts("Mr.", "JOHN", None, "SMITH")),
        ("Mrs. Jane Mary Doe", NameParts("Mrs.", "Jane", "Mary", "Doe")),
        ("Miss Jane Doe", NameParts("Miss", "Jane", None, "Doe")),
        ("Ms. Jane Doe", NameParts("Ms.", "Jane", None, "Doe")),
        ("Missy Elliott", NameParts(None, "Missy", None, "Elliott")),
        ("สมชาย ใจดี", NameParts(None, "สมชาย", None, "ใจดี")),
        ("สมชาย", NameParts(None, "สมชาย", None, None)),
        ("นาย", NameParts("นาย", None, None, None)),
        ("Mr. Somchai Kim Jaidee", NameParts("Mr.", "Somchai", "Kim", "Jaidee")),
        ("นายสมยศ ณ อยุธยา", NameParts("นาย", "สมยศ", None, "ณ อยุธยา")),
        ("นายสมยศ วงศ์ ณ อยุธยา", NameParts("นาย", "สมยศ", "วงศ์", "ณ อยุธยา")),
        ("  นาย\u200bสมชาย\u00a0 ใจดี ", NameParts("นาย", "สมชาย", None, "ใจดี")),
        ("", NameParts(None, None, None, None)),
    ],
)
def test_split_thai_name(raw: str, expected: NameParts) -> None:
    assert split_thai_name(raw) == expected


def test_split_thai_name_extra_titles() -> None:
    assert split_thai_name("อาจารย์สมชาย ใจดี").title is None
    assert split_thai_name("อาจารย์สมชาย ใจดี", ["อาจารย์"]) == NameParts(
        "อาจารย์", "สมชาย", None, "ใจดี"
    )
    # A longer extra title wins over the built-in นาย it starts with.
    assert split_thai_name("นายดาบตำรวจสมชาย ใจดี").title == "นาย"
    assert split_thai_name("นายดาบตำรวจสมชาย ใจดี", ("นายดาบตำรวจ",)) == NameParts(
        "นายดาบตำรวจ", "สมชาย", None, "ใจดี"
    )


def test_split_thai_name_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        split_thai_name(b"abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "abc"), (NAME.encode("cp874"), NAME), (12, "12"), (12.0, "12"), (1.5, "1.5"),
     (Decimal("1.50"), "1.50"), (dt.date(2024, 1, 15), "2024-01-15"), (True, "True")],
)
def test_as_text(value: object, expected: str) -> None:
    assert as_text(value) == expected


def test_as_text_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        as_text([1])


def test_ascii_digits() -> None:
    assert ascii_digits("08-1234-5678") == "0812345678"
    assert ascii_digits("โทร ๐๘๑-๒๓๔") == "081234"
    assert ascii_digits("ไม่มี") is None
