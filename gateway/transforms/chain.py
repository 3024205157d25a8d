"""Compile YAML transform specs into one callable per field, once, at start-up.

A spec list looks like ``["trim", {"pid": {"format": "dashed"}}, {"zfill": 5}]``.
All configuration mistakes surface here as TransformConfigError, so a bad
config stops the gateway at start-up instead of failing on the first request.
The transforms themselves are described in :mod:`.registry`; ``chain_types``,
``chain_note`` and ``legacy_value`` read those descriptions for a whole chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from .builders import Ctx, Transform, TransformConfigError
from .registry import NO_NOTE, REGISTRY, JsonTypes, Lookups, Note, TransformInfo

__all__ = [
    "TRANSFORMS",
    "Transform",
    "TransformConfigError",
    "chain_note",
    "chain_types",
    "compile_chain",
    "legacy_value",
    "split_spec",
]


class _Summaries(Mapping[str, str]):
    """Transform name -> its one-line summary, read live from the registry."""

    def __getitem__(self, name: str) -> str:
        return REGISTRY[name].summary

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


TRANSFORMS: Final[Mapping[str, str]] = _Summaries()
_NO_LOOKUPS: Final[Mapping[str, Mapping[str, object]]] = MappingProxyType({})


def split_spec(spec: object, index: int = 0) -> tuple[str, object]:
    """``name`` or ``{name: args}`` as (name, args); ``index`` places an error in the list."""
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((name, args),) = spec.items()
        if isinstance(name, str):
            return name, args
    raise TransformConfigError(
        (index,), f"a transform is a name or a one-key mapping {{name: args}}; got {spec!r}"
    )


def _steps(specs: Iterable[object]) -> Iterator[tuple[TransformInfo, object]]:
    for index, spec in enumerate(specs):
        name, args = split_spec(spec, index)
        info = REGISTRY.get(name)
        if info is not None:  # compile_chain has refused unknown names already
            yield info, args


def chain_types(specs: Sequence[object], lookups: Lookups) -> JsonTypes | None:
    """The JSON types a compiled chain can yield (besides null); None: whatever the
    driver returned, as no transform says otherwise."""
    types: JsonTypes | None = None
    for info, args in _steps(specs):
        types = info.yields(args, types, lookups)
    return types


def chain_note(specs: Sequence[object], lookups: Lookups) -> Note:
    """The format note of a compiled chain's result."""
    note = NO_NOTE
    for info, args in _steps(specs):
        note = info.note(args, lookups) or note
    return note


def legacy_value(specs: Sequence[object], value: object) -> object:
    """A legacy value that ``specs`` turn into ``value``: each step's legacy form, last first."""
    for info, args in reversed(list(_steps(specs))):
        value = info.legacy(args, value)
    return value


def compile_chain(
    specs: Sequence[str | Mapping[str, object]],
    *,
    lookups: Mapping[str, Mapping[str, object]] = _NO_LOOKUPS,
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
        name, args = split_spec(spec, index)
        info = REGISTRY.get(name)
        if info is None:
            allowed = ", ".join(sorted(REGISTRY))
            message = f"unknown transform {name!r}; allowed: {allowed}"
            raise TransformConfigError((index, name), message)
        steps.append(
            (info.build(args, Ctx((index, name), lookups, extra_titles)), info.runs_on_null)
        )
    return _joined(tuple(steps))


def _joined(steps: tuple[tuple[Transform, bool], ...]) -> Transform:
    """The steps as one callable. Most chains are one or two steps that skip a null: those
    get a closure without the loop (a mapped row runs some twenty chains)."""
    if len(steps) == 1 and not steps[0][1]:
        only = steps[0][0]

        def one(value: object) -> object:
            return None if value is None else only(value)

        return one
    if len(steps) == 2 and not steps[0][1] and not steps[1][1]:
        first, second = steps[0][0], steps[1][0]

        def two(value: object) -> object:
            if value is None:
                return None
            value = first(value)
            return None if value is None else second(value)

        return two

    def chain(value: object) -> object:
        for func, runs_on_null in steps:
            if value is not None or runs_on_null:
                value = func(value)
        return value

    return chain
