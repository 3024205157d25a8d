from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from gateway.transforms import TRANSFORMS, TransformConfigError, compile_chain
from gateway.transforms.registry import REGISTRY

LOOKUPS = {
    "gender": {"1": "ชาย", "2": "หญิง"},
    "province": {"10": "กรุงเทพมหานคร", "11": "สมุทรปราการ", " 12 ": "นนทบุรี"},
}


def run(specs: Sequence[object], value: object, **kwargs: object) -> object:
    chain = compile_chain(specs, lookups=LOOKUPS, **kwargs)  # type: ignore[arg-type]
    return chain(value)


def config_error(specs: object, **kwargs: object) -> TransformConfigError:
    with pytest.raises(TransformConfigError) as info:
        compile_chain(specs, **kwargs)  # type: ignore[arg-type]
    return info.value


# ---- behaviour ----------------------------------------------------------------------------


def test_empty_chain_is_identity() -> None:
    assert run([], " x ") == " x "


def test_chain_applies_left_to_right() -> None:
    assert run(["trim", "upper", {"zfill": 6}], "  ab ") == "0000AB"
    assert run([{"zfill": 6}, "trim"], "  ab ") == "0000ab"


@pytest.mark.parametrize(
    ("specs", "value", "expected"),
    [
        (["pid"], "1-2345-67890-12-1", "1234567890121"),
        (["pid"], "1234567890121      ", "1234567890121"),
        (["pid"], 1234567890121, "1234567890121"),
        (["pid"], "1-2345-67890-12-2", "1234567890122"),  # checksum only checked on request
        ([{"pid": {"format": "dashed"}}], "1234567890121", "1-2345-67890-12-1"),
        ([{"pid": {"format": "plain", "validate": True}}], "1 2345 67890 12 1", "1234567890121"),
        ([{"pid": None}], "  ", None),
    ],
)
def test_pid(specs: list[object], value: object, expected: object) -> None:
    assert run(specs, value) == expected


def test_pid_validate_rejects_bad_checksum() -> None:
    with pytest.raises(ValueError, match="check digit"):
        run([{"pid": {"validate": True}}], "1-2345-67890-12-2")


@pytest.mark.parametrize(
    ("specs", "value", "expected"),
    [
        (["be_date"], "25670115", "2024-01-15"),
        (["be_date"], "15/01/2567", "2024-01-15"),
        (["be_date"], "00/01/2567", "2024-01"),
        (["be_date"], "00000000", None),
        (["be_date"], dt.date(2567, 1, 15), "2024-01-15"),
        (["be_date"], "29022567", "2024-02-29"),
        ([{"be_date": {"output": "be_int"}}], "15/01/2567", 25670115),
        ([{"be_date": {"output": "be_int"}}], "25670100", 25670100),
        ([{"be_date": {"order": "mdy"}}], "01/15/2567", "2024-01-15"),
        ([{"be_date": {"order": "dmy", "output": "iso"}}], "150167", "2024-01-15"),
        (["date"], "2024-01-15", "2024-01-15"),
        (["date"], dt.date(2024, 2, 29), "2024-02-29"),
        ([{"date": {"output": "be_int"}}], "2024-01-15", 25670115),
    ],
)
def test_dates(specs: list[object], value: object, expected: object) -> None:
    assert run(specs, value) == expected


def test_bad_date_raises_value_error() -> None:
    with pytest.raises(ValueError):
        run(["be_date"], "32/01/2567")


@pytest.mark.parametrize("name", ["cp874", "thai"])
def test_cp874(name: str) -> None:
    text = "นายสมชาย ใจดี"
    assert run([name], text.encode("cp874")) == text
    assert run([name], text.encode("cp874").decode("latin1")) == text
    assert run([name], text.encode("cp874").decode("cp1252")) == text
    assert run([name], text) == text


def test_cp874_source() -> None:
    text = "นายสมชาย"
    assert run([{"cp874": {"source": "utf-8"}}], text.encode().decode("latin1")) == text


def test_clean_and_trim() -> None:
    assert run(["clean"], " ท\u0e4d\u0e32\u200bงาน\u00a0 ") == "ทำงาน"
    assert run(["clean"], "\u200b ") is None
    assert run(["trim"], "  สมชาย   ") == "สมชาย"
    assert run(["trim"], "     ") is None
    assert run(["trim"], 12) == "12"


@pytest.mark.parametrize(
    ("part", "expected"),
    [("title", "นางสาว"), ("first", "สมหญิง"), ("middle", None), ("last", "รักไทย")],
)
def test_name(part: str, expected: str | None) -> None:
    assert run([{"name": part}], "นางสาวสมหญิง  รักไทย") == expected


def test_name_uses_extra_titles() -> None:
    assert run([{"name": "title"}], "อาจารย์สมชาย ใจดี", titles=["อาจารย์"]) == "อาจารย์"
    assert run([{"name": "first"}], "อาจารย์สมชาย ใจดี", titles=["อาจารย์"]) == "สมชาย"
    assert run([{"name": "first"}], "อาจารย์สมชาย ใจดี") == "อาจารย์สมชาย"


@pytest.mark.parametrize("code", [1, "1", "1  ", " 1", b"1", 1.0, Decimal("1")])
def test_lookup_table_keys_compare_as_stripped_strings(code: object) -> None:
    assert run([{"lookup": "gender"}], code) == "ชาย"


def test_lookup_table_keys_are_stripped_too() -> None:
    assert run([{"lookup": "province"}], 12) == "นนทบุรี"


def test_lookup_missing_code() -> None:
    assert run([{"lookup": "gender"}], "9") is None
    assert run([{"lookup": {"table": "gender", "default": "ไม่ระบุ"}}], "9") == "ไม่ระบุ"
    # None short-circuits before the lookup, so the default does not apply to it.
    assert run([{"lookup": {"table": "gender", "default": "ไม่ระบุ"}}], None) is None


def test_lookup_inline_map() -> None:
    spec = {"lookup": {"map": {1: "active", "2": "closed", "N": None}, "default": "unknown"}}
    assert run([spec], "1") == "active"
    assert run([spec], 2) == "closed"
    assert run([spec], "N") is None
    assert run([spec], "x") == "unknown"


def test_lookup_is_compiled_once() -> None:
    tables = {"t": {"1": "a"}}
    chain = compile_chain([{"lookup": "t"}], lookups=tables)
    tables["t"]["1"] = "changed"
    assert chain("1") == "a"


@pytest.mark.parametrize(
    ("specs", "value", "expected"),
    [
        (["int"], "0012", 12),
        (["int"], " 42 ", 42),
        (["int"], "๑๒", 12),
        (["int"], 12.0, 12),
        (["int"], Decimal("7"), 7),
        (["int"], b"0012", 12),
        (["int"], "   ", None),
        (["int"], True, 1),
        (["float"], "1.5", 1.5),
        (["float"], 3, 3.0),
        (["float"], "", None),
        (["decimal"], "2.5", 2.5),
        ([{"decimal": {"places": 2}}], "2.675", 2.68),  # half-up on the written digits
        ([{"decimal": {"places": 2}}], 2.675, 2.68),
        ([{"decimal": {"places": 0}}], "2.5", 3.0),
        ([{"decimal": {"places": 1}}], Decimal("-1.25"), -1.3),
        (["str"], 12, "12"),
        (["str"], 12.0, "12"),
        (["str"], 1.25, "1.25"),
        (["str"], dt.date(2024, 1, 15), "2024-01-15"),
        (["str"], "นาย".encode("cp874"), "นาย"),
    ],
)
def test_casts(specs: list[object], value: object, expected: object) -> None:
    result = run(specs, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Y", True), ("n", False), ("1", True), (0, False), ("T", True), ("f", False),
     ("true", True), ("FALSE", False), ("yes", True), ("ใช่", True), ("ไม่ใช่", False),
     (True, True), (1.0, True), (" ", None)],
)
def test_bool(value: object, expected: bool | None) -> None:
    assert run(["bool"], value) is expected


@pytest.mark.parametrize(
    ("specs", "value"),
    [
        (["int"], "1.5"),
        (["int"], 1.5),
        (["int"], "12abc"),
        (["int"], "1_000"),
        (["int"], "nan"),
        (["int"], Decimal("1E+999999999")),
        (["float"], "inf"),
        (["float"], 10**400),
        (["decimal"], "abc"),
        ([{"decimal": {"places": 2}}], "1e400"),
        (["bool"], "maybe"),
        (["bool"], 2),
    ],
)
def test_cast_failures_raise_value_error(specs: list[object], value: object) -> None:
    with pytest.raises(ValueError):
        run(specs, value)


@pytest.mark.parametrize("name", ["int", "float", "str", "upper", "trim", "zfill", "digits"])
def test_unsupported_types_raise_type_error(name: str) -> None:
    spec: object = {"zfill": 3} if name == "zfill" else name
    with pytest.raises(TypeError):
        run([spec], [1, 2])


@pytest.mark.parametrize(
    ("specs", "value", "expected"),
    [
        ([{"zfill": 5}], 42, "00042"),
        ([{"zfill": 5}], " 42 ", "00042"),
        ([{"zfill": 2}], "1234", "1234"),
        (["upper"], "mr. john", "MR. JOHN"),
        (["lower"], "ABC", "abc"),
        (["digits"], "08-1234-5678", "0812345678"),
        (["digits"], "๐๘๑-๒๓๔-๕๖๗๘", "0812345678"),
        (["digits"], "ไม่มี", None),
        ([{"replace": {"pattern": r"\s*หมู่\s*", "with": " ม."}}], "9 หมู่ 3", "9 ม.3"),
        ([{"replace": {"pattern": r"(\d+)/(\d+)"}}], "บ้าน 9/1", "บ้าน "),
        ([{"replace": {"pattern": r"(?P<a>\d)-(?P<b>\d)", "with": r"\g<b>-\g<a>"}}], "1-2", "2-1"),
        ([{"substr": {"start": 0, "length": 2}}], "101701", "10"),
        ([{"substr": {"start": 2, "length": 2}}], "101701", "17"),
        ([{"substr": {"start": 4}}], "101701", "01"),
        ([{"substr": {"length": 2}}], 101701, "10"),
    ],
)
def test_string_transforms(specs: list[object], value: object, expected: object) -> None:
    assert run(specs, value) == expected


def test_null_if_and_default() -> None:
    specs = [{"null_if": ["-", "0", "N/A", 9999]}, {"default": "ไม่ระบุ"}]
    for value in ["-", " - ", "0", 0, "N/A", 9999, "9999 ", None]:
        assert run(specs, value) == "ไม่ระบุ"
    assert run(specs, "สมชาย") == "สมชาย"
    assert run([{"null_if": "-"}], "-") is None
    assert run([{"null_if": ["-"]}], "--") == "--"


def test_none_short_circuits_every_transform_except_default() -> None:
    for name in TRANSFORMS:
        if name != "default":
            assert run([{"null_if": ["x"]}, *_minimal(name)], "x") is None
    assert run(["int", {"default": 0}, "str"], None) == "0"
    assert run([{"default": 0}], "") == ""  # only None is missing, not blank


def test_errors_are_not_swallowed_by_the_chain() -> None:
    chain = compile_chain(["pid"])
    with pytest.raises(ValueError):
        chain("12345")
    assert chain("1234567890121") == "1234567890121"  # still usable afterwards


def test_transforms_are_documented() -> None:
    assert set(TRANSFORMS) == set(REGISTRY)
    for name, doc in TRANSFORMS.items():
        assert doc.strip(), name
        compile_chain(_minimal(name), lookups=LOOKUPS)
    with pytest.raises(TypeError):
        TRANSFORMS["x"] = "y"  # type: ignore[index]


def _minimal(name: str) -> list[str | Mapping[str, object]]:
    return [REGISTRY[name].spec]  # the example arguments the transform describes itself with


# ---- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "path", "fragment"),
    [
        (["pidd"], (0, "pidd"), "allowed: arabic_digits, be_date, bool, clean"),
        (["trim", {"bogus": 1}], (1, "bogus"), "unknown transform 'bogus'"),
        ([3], (0,), "one-key mapping"),
        ([{"pid": None, "trim": None}], (0,), "one-key mapping"),
        ([{1: "x"}], (0,), "one-key mapping"),
        ([None], (0,), "one-key mapping"),
        ([{"pid": "dashed"}], (0, "pid"), "keys format, validate"),
        ([{"pid": {"fmt": "dashed"}}], (0, "pid", "fmt"), "allowed: format, validate"),
        ([{"pid": {"format": "spaced"}}], (0, "pid", "format"), "one of plain, dashed"),
        ([{"pid": {"validate": "yes"}}], (0, "pid", "validate"), "true or false"),
        ([{"be_date": {"order": "ydm"}}], (0, "be_date", "order"), "one of auto, ymd, dmy, mdy"),
        ([{"date": {"output": "epoch"}}], (0, "date", "output"), "one of iso, be_int"),
        ([{"be_date": {"era": "ce"}}], (0, "be_date", "era"), "allowed: order, output"),
        ([{"cp874": {"source": "klingon"}}], (0, "cp874", "source"), "text encoding"),
        ([{"thai": {"source": "base64"}}], (0, "thai", "source"), "text encoding"),
        ([{"cp874": {"source": 874}}], (0, "cp874", "source"), "text encoding"),
        ([{"clean": True}], (0, "clean"), "takes no arguments"),
        ([{"upper": {"x": 1}}], (0, "upper"), "takes no arguments"),
        (["name"], (0, "name"), "title, first, middle or last"),
        ([{"name": "surname"}], (0, "name", "part"), "one of first, title, middle, last"),
        (["lookup"], (0, "lookup"), "exactly one of table, map"),
        ([{"lookup": "religion"}], (0, "lookup", "table"), "known: gender, province"),
        ([{"lookup": {"table": "gender", "map": {"1": "x"}}}], (0, "lookup"), "exactly one"),
        ([{"lookup": {"table": 5}}], (0, "lookup", "table"), "unknown lookup table 5"),
        ([{"lookup": {"map": []}}], (0, "lookup", "map"), "non-empty mapping"),
        ([{"lookup": {"map": {}}}], (0, "lookup", "map"), "non-empty mapping"),
        ([{"lookup": {"map": {"1": ["a"]}}}], (0, "lookup", "map"), "string, number"),
        ([{"lookup": {"map": {"1": "a", " 1": "b"}}}], (0, "lookup", "map"), "both mean '1'"),
        ([{"lookup": {"table": "gender", "default": {}}}], (0, "lookup", "default"), "string"),
        ([{"lookup": {"tabel": "gender"}}], (0, "lookup", "tabel"), "allowed: table, map, default"),
        ([{"zfill": "5"}], (0, "zfill", "width"), "integer from 1 to 64"),
        ([{"zfill": True}], (0, "zfill", "width"), "integer from 1 to 64"),
        (["zfill"], (0, "zfill", "width"), "integer"),
        ([{"decimal": {"places": -1}}], (0, "decimal", "places"), "integer from 0 to 20"),
        ([{"decimal": {"places": 2.5}}], (0, "decimal", "places"), "integer"),
        ([{"decimal": 2}], (0, "decimal"), "keys places"),
        (["null_if"], (0, "null_if"), "needs a value"),
        ([{"null_if": []}], (0, "null_if"), "needs a value"),
        ([{"null_if": [["-"]]}], (0, "null_if", "values"), "string, number or boolean"),
        (["default"], (0, "default"), "needs the value"),
        ([{"default": ["a"]}], (0, "default", "value"), "string, number or boolean"),
        ([{"replace": {"pattern": "("}}], (0, "replace", "pattern"), "invalid regular"),
        ([{"replace": {"pattern": "a", "with": r"\1"}}], (0, "replace", "pattern"), "group"),
        ([{"replace": {"pattern": "(a)", "with": r"\g<x>"}}], (0, "replace", "pattern"), "group"),
        ([{"replace": {"with": "x"}}], (0, "replace", "pattern"), "regular expression string"),
        ([{"replace": {"pattern": "a", "with": 1}}], (0, "replace", "with"), "must be a string"),
        ([{"replace": {"pattern": "a", "by": "b"}}], (0, "replace", "by"), "allowed: pattern"),
        (["substr"], (0, "substr"), "needs start and/or length"),
        ([{"substr": {"start": -1}}], (0, "substr", "start"), "integer from 0"),
        ([{"substr": {"length": "2"}}], (0, "substr", "length"), "integer from 0"),
    ],
)
def test_config_errors(specs: list[object], path: tuple[object, ...], fragment: str) -> None:
    error = config_error(specs, lookups=LOOKUPS)
    assert error.path == path
    assert fragment in str(error)
    assert fragment in error.message
    assert str(error).startswith(f"transform [{'/'.join(map(str, path))}]: ")


@pytest.mark.parametrize("specs", ["pid", b"pid", None, {"pid": None}, 5])
def test_specs_must_be_a_list(specs: object) -> None:
    error = config_error(specs)
    assert error.path == ()
    assert "must be a list" in str(error)


def test_titles_must_be_a_list() -> None:
    assert "titles" in str(config_error(["trim"], titles="นาย"))


def test_lookup_without_any_tables() -> None:
    assert "(none configured)" in str(config_error([{"lookup": "gender"}]))


def test_config_error_is_a_value_error() -> None:
    assert issubclass(TransformConfigError, ValueError)
    error = TransformConfigError((2, "lookup"), "boom")
    assert error.path == (2, "lookup")
    assert error.message == "boom"
    assert str(error) == "transform [2/lookup]: boom"


def test_arabic_digits_keeps_the_rest_of_a_house_number() -> None:
    chain = compile_chain(["cp874", "clean", "arabic_digits"])
    assert chain("๙๙/๑") == "99/1"
    assert chain("๑๒๓ ม.๔".encode("cp874")) == "123 ม.4"
    assert chain("45/2") == "45/2"
    assert chain("") is None


# ---- chains of one and two steps (compiled without the loop) -----------------------------


@pytest.mark.parametrize(
    ("specs", "value", "expected"),
    [
        (["trim", {"zfill": 5}], " 42 ", "00042"),  # each step once, in order
        (["lower", "upper"], "Ab", "AB"),  # the second step is the second, not the first again
        (["upper", "lower"], "Ab", "ab"),
        ([{"default": "-"}, "trim"], None, "-"),  # a first step that runs on null
        (["trim", {"default": "-"}], None, "-"),  # a second one
        ([{"default": " - "}], None, " - "),
        (["trim"], None, None),
        (["trim", {"zfill": 5}], None, None),
    ],
)
def test_short_chains_run_each_step_in_order_and_skip_null_as_the_long_ones(
    specs: list[object], value: object, expected: object
) -> None:
    assert run(specs, value) == expected
    # with a third step that changes nothing here (the loop, not a short form), the same
    assert run([*specs, "upper" if expected is None else "trim"], value) == (
        None if expected is None else str(expected).strip()
    )


def test_the_summaries_and_notes_read_the_registry() -> None:
    from gateway.transforms import chain_note, split_spec

    assert len(TRANSFORMS) == len(REGISTRY) > 0
    with pytest.raises(TransformConfigError) as info:
        split_spec(42)
    assert info.value.path == (0,)
    note = chain_note(["trim", {"zfill": 5}], {})
    assert note.en == "zero-padded to 5 characters", note
    assert chain_note(["trim"], {}).en == ""
