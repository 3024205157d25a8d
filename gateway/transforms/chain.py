"""Compile YAML transform specs into one callable per field, once, at start-up.

A spec list looks like ``["trim", {"pid": {"format": "dashed"}}, {"zfill": 5}]``.
All configuration mistakes surface here as TransformConfigError, so a bad
config stops the gateway at start-up instead of failing on the first request.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from .citizen_id import format_pid, is_valid_pid, normalise_pid
from .text import arabic_digits, as_text, ascii_digits, clean_text, redecode_thai, split_thai_name
from .thaidate import Era, Order, be_int, parse_legacy_date

__all__ = ["TRANSFORMS", "Transform", "TransformConfigError", "compile_chain"]

Transform = Callable[[object], object]


class TransformConfigError(ValueError):
    """A transform spec is invalid; `path` locates it inside the spec list, e.g. (2, "lookup")."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"transform [{'/'.join(map(str, path))}]: {message}" if path else message)


@dataclass(frozen=True, slots=True)
class _Ctx:
    path: tuple[str | int, ...]  # (index, transform name)
    lookups: Mapping[str, Mapping[str, str]]
    titles: tuple[str, ...]

    def error(self, message: str, *keys: str) -> TransformConfigError:
        return TransformConfigError((*self.path, *keys), f"{self.path[-1]}: {message}")


_Builder = Callable[[object, _Ctx], Transform]


def _options(args: object, ctx: _Ctx, allowed: Sequence[str]) -> dict[str, object]:
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise ctx.error(f"expected a mapping with keys {', '.join(allowed)}, got {args!r}")
    for key in args:
        if key not in allowed:
            raise ctx.error(f"unknown argument {key!r}; allowed: {', '.join(allowed)}", str(key))
    return {str(k): v for k, v in args.items()}


def _choice(value: object, allowed: Sequence[str], ctx: _Ctx, key: str) -> str:
    if value is None:
        return allowed[0]  # the first allowed value is the default
    if not isinstance(value, str) or value not in allowed:
        raise ctx.error(f"{key} must be one of {', '.join(allowed)}; got {value!r}", key)
    return value


def _int_arg(value: object, ctx: _Ctx, key: str, low: int, high: int) -> int:
    # bool is an int subclass, but "zfill: true" is a typo, not a width.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ctx.error(f"{key} must be an integer from {low} to {high}; got {value!r}", key)
    return value


def _scalar_arg(value: object, ctx: _Ctx, key: str) -> object:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ctx.error(f"{key} must be a string, number or boolean; got {value!r}", key)
    return value


def _key(value: object) -> str:
    """Lookup/null_if key: a stripped string, so 1, "1" and "1  " all compare equal."""
    if isinstance(value, bool | str | bytes | bytearray | memoryview | int | float | date):
        return as_text(value).strip()
    # NUMERIC(5,0) codes arrive as Decimal("1"); the size check keeps int() cheap.
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 40 and (
        value == value.to_integral_value()
    ):
        return str(int(value))
    return str(value).strip()


def _to_decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest repr, so 2.675 rounds half-up as written
    else:
        text = as_text(value).strip()
        if not text:
            return None
        if "_" in text:  # Decimal/int/float accept "1_000"; a legacy column never means that
            raise ValueError(f"not a number: {text!r}")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {number}")
    return number


def _to_int(value: object) -> int | None:
    if isinstance(value, int):
        return int(value)
    number = _to_decimal(value)
    if number is None:
        return None
    if number.adjusted() > 40:  # int() of 1E+999999999 would eat memory
        raise ValueError(f"integer out of range: {value!r}")
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {value!r}")  # never truncate silently
    return int(number)


def _to_float(value: object, places: int | None = None) -> float | None:
    number = _to_decimal(value)
    if number is None:
        return None
    if places is not None:
        try:
            number = number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, Context(prec=60))
        except InvalidOperation:
            raise ValueError(f"number too large to round: {value!r}") from None
    result = float(number)
    if not math.isfinite(result):
        raise ValueError(f"number out of range: {value!r}")
    return result


_BOOLS: Final = {
    **dict.fromkeys(("y", "yes", "t", "true", "1", "ใช่"), True),
    **dict.fromkeys(("n", "no", "f", "false", "0", "ไม่ใช่"), False),
}


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _key(value).casefold()
    if text and text not in _BOOLS:
        raise ValueError(f"not a boolean: {value!r}")
    return _BOOLS.get(text)  # blank -> None


def _pid(args: object, ctx: _Ctx) -> Transform:
    opts = _options(args, ctx, ("format", "validate"))
    dashed = _choice(opts.get("format"), ("plain", "dashed"), ctx, "format") == "dashed"
    validate = opts.get("validate", False)
    if not isinstance(validate, bool):
        raise ctx.error(f"validate must be true or false; got {validate!r}", "validate")

    def run(value: object) -> object:
        pid = normalise_pid(value)
        if pid is not None and validate and not is_valid_pid(pid):
            raise ValueError("citizen ID check digit mismatch")
        return format_pid(pid) if pid is not None and dashed else pid

    return run


_ORDERS: Final[Mapping[str, Order]] = {"auto": "auto", "ymd": "ymd", "dmy": "dmy", "mdy": "mdy"}


def _date_builder(era: Era) -> _Builder:
    def build(args: object, ctx: _Ctx) -> Transform:
        opts = _options(args, ctx, ("order", "output"))
        order = _ORDERS[_choice(opts.get("order"), tuple(_ORDERS), ctx, "order")]
        as_int = _choice(opts.get("output"), ("iso", "be_int"), ctx, "output") == "be_int"

        def run(value: object) -> object:
            pd = parse_legacy_date(value, era=era, order=order)
            return None if pd is None else be_int(pd) if as_int else pd.iso()

        return run

    return build


def _redecode(args: object, ctx: _Ctx) -> Transform:
    source = _options(args, ctx, ("source",)).get("source", "cp874")
    codec = source if isinstance(source, str) else "?"
    try:
        # Four NULs reach the codec (empty input is short-circuited), and a bytes-to-bytes
        # codec such as base64 then raises LookupError like an unknown name.
        b"\0\0\0\0".decode(codec)
    except UnicodeDecodeError:
        pass  # a text encoding that merely dislikes NULs
    except LookupError:
        raise ctx.error(f"source must be a text encoding such as cp874; got {source!r}",
                        "source") from None
    return lambda value: redecode_thai(value, source=codec)


def _simple(func: Callable[[object], object]) -> _Builder:
    def build(args: object, ctx: _Ctx) -> Transform:
        if args is not None:
            raise ctx.error(f"takes no arguments, got {args!r}")
        return func

    return build


def _name(args: object, ctx: _Ctx) -> Transform:
    if args is None:
        raise ctx.error("needs the part to keep: title, first, middle or last")
    part = _choice(args, ("first", "title", "middle", "last"), ctx, "part")
    titles = ctx.titles
    return lambda value: getattr(_split_name(as_text(value), titles), part)


# A row's title, first and last name are split from one full name, one field after the
# other: the second and third field find the split here.  A few entries suffice for
# several name columns; fewer names linger in memory than with a bigger cache.
_split_name = functools.lru_cache(maxsize=8)(split_thai_name)


def _normalised_table(
    items: Iterable[tuple[object, object]], ctx: _Ctx, key: str
) -> dict[str, object]:
    out: dict[str, object] = {}
    for code, desc in items:
        k = _key(code)
        if k in out and out[k] != desc:
            raise ctx.error(f"codes {code!r} and another key both mean {k!r}", key)
        out[k] = _scalar_arg(desc, ctx, key)
    return out


def _lookup(args: object, ctx: _Ctx) -> Transform:
    allowed = ("table", "map", "default")
    opts = {"table": args} if isinstance(args, str) else _options(args, ctx, allowed)
    if ("table" in opts) == ("map" in opts):
        raise ctx.error("give a table name, or a mapping with exactly one of table, map")
    default = _scalar_arg(opts.get("default"), ctx, "default")
    if "table" in opts:
        name = opts["table"]
        if not isinstance(name, str) or name not in ctx.lookups:
            known = ", ".join(sorted(ctx.lookups)) or "(none configured)"
            raise ctx.error(f"unknown lookup table {name!r}; known: {known}", "table")
        table = _normalised_table(ctx.lookups[name].items(), ctx, "table")
    else:
        inline = opts["map"]
        if not isinstance(inline, Mapping) or not inline:
            raise ctx.error(f"map must be a non-empty mapping of codes; got {inline!r}", "map")
        table = _normalised_table(inline.items(), ctx, "map")
    return lambda value: table.get(_key(value), default)


def _decimal(args: object, ctx: _Ctx) -> Transform:
    places = _options(args, ctx, ("places",)).get("places")
    n = None if places is None else _int_arg(places, ctx, "places", 0, 20)
    return lambda value: _to_float(value, n)


def _zfill(args: object, ctx: _Ctx) -> Transform:
    width = _int_arg(args, ctx, "width", 1, 64)
    return lambda value: as_text(value).strip().zfill(width)


def _null_if(args: object, ctx: _Ctx) -> Transform:
    values = args if isinstance(args, list | tuple) else [args]
    if args is None or not values:
        raise ctx.error("needs a value or a list of values that mean 'no value'")
    nulls = frozenset(_key(_scalar_arg(v, ctx, "values")) for v in values)
    return lambda value: None if _key(value) in nulls else value


def _default(args: object, ctx: _Ctx) -> Transform:
    if args is None:
        raise ctx.error("needs the value to use when the field is null")
    fallback = _scalar_arg(args, ctx, "value")
    return lambda value: fallback if value is None else value


def _replace(args: object, ctx: _Ctx) -> Transform:
    opts = _options(args, ctx, ("pattern", "with"))
    pattern, repl = opts.get("pattern"), opts.get("with", "")
    if not isinstance(pattern, str):
        raise ctx.error(f"pattern must be a regular expression string; got {pattern!r}", "pattern")
    if not isinstance(repl, str):
        raise ctx.error(f"with must be a string; got {repl!r}", "with")
    try:
        regex = re.compile(pattern)
        # Check the replacement's group references now: "|" adds an empty alternative that
        # always matches, so expand() parses the template without needing sample data.
        probe = re.compile(f"{pattern}|").match("")
        if probe is not None:
            probe.expand(repl)
    except (re.error, IndexError) as exc:  # IndexError: an unknown \g<name> in the template
        raise ctx.error(f"invalid regular expression or replacement: {exc}", "pattern") from None

    def run(value: object) -> object:
        try:
            return regex.sub(repl, as_text(value))
        except (re.error, IndexError) as exc:  # a template error the probe could not see
            raise ValueError(str(exc)) from None

    return run


def _substr(args: object, ctx: _Ctx) -> Transform:
    opts = _options(args, ctx, ("start", "length"))
    if not opts:
        raise ctx.error("needs start and/or length")
    start = _int_arg(opts.get("start", 0), ctx, "start", 0, 1_000_000)
    length = opts.get("length")
    end = None if length is None else start + _int_arg(length, ctx, "length", 0, 1_000_000)
    return lambda value: as_text(value)[start:end]


_REGISTRY: Final[Mapping[str, tuple[str, _Builder]]] = {
    "pid": ("citizen ID to 13 digits; args format: plain|dashed, validate: bool", _pid),
    "be_date": ("BE date to ISO; order: auto|ymd|dmy|mdy, output: iso|be_int", _date_builder("be")),
    "date": ("CE legacy date to ISO; args as be_date", _date_builder("ce")),
    "cp874": ("re-decode TIS-620 bytes or latin1/cp1252 mojibake; source: ENCODING", _redecode),
    "thai": ("alias of cp874", _redecode),
    "clean": ("drop invisible chars, NFC, compose sara am, collapse spaces; empty -> null",
              _simple(clean_text)),
    "trim": ("strip surrounding whitespace; empty -> null",
             _simple(lambda value: as_text(value).strip() or None)),
    "name": ("one part of a Thai full name: title|first|middle|last", _name),
    "lookup": ("code to description: TABLE or {table: NAME | map: {...}, default: V}", _lookup),
    "int": ("integer ('0012' -> 12, never truncates); blank -> null", _simple(_to_int)),
    "float": ("floating-point number; blank -> null", _simple(_to_float)),
    "decimal": ("number as float, rounded half-up; arg places: N", _decimal),
    "str": ("text; integral floats without '.0', dates as ISO", _simple(as_text)),
    "bool": ("Y/N 1/0 T/F true/false yes/no ใช่/ไม่ใช่ -> bool; blank -> null", _simple(_to_bool)),
    "zfill": ("left-pad with zeros to N characters (zfill: N)", _zfill),
    "upper": ("upper case", _simple(lambda value: as_text(value).upper())),
    "lower": ("lower case", _simple(lambda value: as_text(value).lower())),
    "digits": ("keep only digits, Thai digits as ASCII; none -> null", _simple(ascii_digits)),
    "arabic_digits": ("Thai digits as ASCII, other text kept", _simple(arabic_digits)),
    "null_if": ("null when the stripped text is one of the values (null_if: [...])", _null_if),
    "default": ("value used when the field is null (default: V)", _default),
    "replace": ("regex substitution: {pattern: REGEX, with: TEXT}", _replace),
    "substr": ("slice of the text: {start: N, length: N}, counting from 0", _substr),
}

TRANSFORMS: Final[Mapping[str, str]] = MappingProxyType({n: d for n, (d, _) in _REGISTRY.items()})
_RUNS_ON_NULL: Final = frozenset({"default"})
_NO_LOOKUPS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType({})


def _split_spec(spec: object, index: int) -> tuple[str, object]:
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((name, args),) = spec.items()
        if isinstance(name, str):
            return name, args
    raise TransformConfigError(
        (index,), f"a transform is a name or a one-key mapping {{name: args}}; got {spec!r}"
    )


def compile_chain(
    specs: Sequence[str | Mapping[str, object]],
    *,
    lookups: Mapping[str, Mapping[str, str]] = _NO_LOOKUPS,
    titles: Sequence[str] = (),
) -> Transform:
    """Compile a list of transform specs into one callable applied left to right.

    Raises TransformConfigError for an unknown transform, argument or lookup
    table, or an argument of the wrong type. A None value skips every
    transform except `default`. At run time a transform raises ValueError or
    TypeError for data it can not convert: the caller is expected to catch
    those two, null the field and count the failure (never anything else
    escapes for ordinary driver values).
    """
    given: object = specs  # checked as given: compiled code would trust the annotation
    if isinstance(given, str | bytes) or not isinstance(given, Sequence):
        raise TransformConfigError((), f"transforms must be a list; got {given!r}")
    if isinstance(titles, str | bytes):
        raise TransformConfigError((), "titles must be a list of strings")
    extra_titles = tuple(titles)
    steps: list[tuple[Transform, bool]] = []
    for index, spec in enumerate(specs):
        name, args = _split_spec(spec, index)
        entry = _REGISTRY.get(name)
        if entry is None:
            allowed = ", ".join(sorted(_REGISTRY))
            message = f"unknown transform {name!r}; allowed: {allowed}"
            raise TransformConfigError((index, name), message)
        steps.append((entry[1](args, _Ctx((index, name), lookups, extra_titles)),
                      name in _RUNS_ON_NULL))
    compiled = tuple(steps)

    def chain(value: object) -> object:
        for func, runs_on_null in compiled:
            if value is not None or runs_on_null:
                value = func(value)
        return value

    return chain
