"""The config boundary is drawn once: a runtime object holds a YAML model, never a copy of it.

Start-up validates the YAML into the frozen pydantic models of ``gateway.config.models``
and turns them into the runtime objects of ``gateway.config.runtime``.  The one pattern:
what the request path can read as written, it reads from the model itself (a field typed
with the model); a runtime object declares only what start-up derives (a compiled
pattern, a prepared operation, a resolved path).  A runtime object that re-declares a
model's fields by hand (the same names with the same types) is a twin that drifts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator

from pydantic import BaseModel

from gateway.adapter import BackendLimits
from gateway.config import models
from gateway.config.runtime import Settings

# Twins kept on purpose, each with its reason.
_BY_DESIGN = {
    # the adapter contract: an adapter imports gateway.adapter only, never the YAML schema
    (BackendLimits.__qualname__, models.BackendConfig.__qualname__),
}


# Twins still to mend; this list may only shrink (the last test fails while an entry is stale).
_NOT_YET = {
    ("AuditSettings", "AuditConfig"),
    ("PgAuditSettings", "PostgresAuditConfig"),
    ("PgAuditSettings", "PostgresStateConfig"),  # the shared state store connects likewise
    ("ReportSettings", "ReportConfig"),
    ("FieldMap", "FieldConfig"),  # the compiled output mapping (gateway/normalise.py)
}


def _schema_models() -> dict[str, type[BaseModel]]:
    """Every YAML model, the audit's section included (it is validated with the rest)."""
    found: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel]) -> None:
        if model.__qualname__ in found:
            return
        found[model.__qualname__] = model
        for f in model.model_fields.values():
            for inner in _classes(f.annotation):
                if issubclass(inner, BaseModel):
                    walk(inner)

    walk(models.GatewayConfig)
    return found


def _classes(hint: object) -> Iterator[type]:
    """The classes named in a type hint: ``Mapping[str, X] | None`` names X."""
    if isinstance(hint, type) and not typing.get_args(hint):
        yield hint
    for arg in typing.get_args(hint):
        yield from _classes(arg)
    origin = typing.get_origin(hint)
    if isinstance(origin, type) and origin is not types.UnionType:
        yield origin


def _runtime_objects() -> dict[str, type]:
    """Every dataclass the request path can reach from :class:`Settings`."""
    found: dict[str, type] = {}

    def walk(cls: type) -> None:
        if cls.__qualname__ in found or not dataclasses.is_dataclass(cls):
            return
        found[cls.__qualname__] = cls
        for hint in typing.get_type_hints(cls).values():
            for inner in _classes(hint):
                walk(inner)

    walk(Settings)
    return found


def _is_model(hint: object) -> bool:
    return any(issubclass(c, BaseModel) for c in _classes(hint))


def _copied_fields(runtime: type, model: type[BaseModel]) -> list[str]:
    """Fields of ``runtime`` with a name and a type of ``model``'s, the models themselves aside
    (a field typed with a model is the model used as written, the pattern itself)."""
    hints = typing.get_type_hints(runtime)
    return sorted(
        name
        for name, hint in hints.items()
        if name in model.model_fields
        and model.model_fields[name].annotation == hint
        and not _is_model(hint)
    )


def _twins() -> dict[tuple[str, str], list[str]]:
    out = {}
    schema = _schema_models()
    for rname, runtime in _runtime_objects().items():
        for mname, model in schema.items():
            copied = _copied_fields(runtime, model)
            if len(copied) >= 2:
                out[(rname, mname)] = copied
    return out


def test_the_walk_sees_the_runtime_objects_and_the_models() -> None:
    """The check below looks where the twins were: it can not pass by seeing nothing."""
    assert {"Settings", "Backend", "Service", "Consumer"} <= set(_runtime_objects())
    assert {"GatewayConfig", "BackendConfig", "CircuitConfig", "LC2Config", "AuditConfig"} <= set(
        _schema_models()
    )

    @dataclasses.dataclass(frozen=True)
    class Copy:
        failure_threshold: int
        open_for: float
        derived: str

    assert _copied_fields(Copy, models.CircuitConfig) == ["failure_threshold", "open_for"]


def test_no_runtime_object_re_declares_a_models_fields() -> None:
    twins = {k: v for k, v in _twins().items() if k not in _BY_DESIGN | _NOT_YET}
    assert twins == {}, (
        "a runtime object copies a YAML model's fields; hold the model instead "
        "(see gateway/config/runtime.py)"
    )


def test_every_twin_listed_still_exists() -> None:
    """A twin mended leaves its list: the lists say what is true."""
    assert set(_twins()) >= _BY_DESIGN | _NOT_YET
