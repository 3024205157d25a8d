"""Each transform describes itself once, and OpenAPI, the pack and the sandbox read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.describe.pack import load_pack
from gateway.openapi import build_openapi
from gateway.transforms import (
    TRANSFORMS,
    chain_note,
    chain_types,
    compile_chain,
    legacy_value,
    registry,
)
from gateway.transforms.registry import REGISTRY, TransformInfo, json_type
from tests.support import (
    SQLITE_QUERY,
    TEST_ENV,
    base_config,
    fisher_service,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)


def _schema_types(schema: dict[str, Any]) -> set[str]:
    if "type" in schema:
        return {schema["type"]}
    return {s["type"] for s in schema.get("anyOf", [])}


def _views(tmp_path: Path, field: dict[str, Any]) -> tuple[set[str], set[str], list[Any]]:
    """(OpenAPI types, pack types, sandbox values) of one output field ``probe``."""
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY, description="d", description_th="ท")
    svc["output"]["probe"] = {**field, "description": "p", "description_th": "พ"}
    svc["sandbox"] = {"generate": 6}
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    settings = settings_from(cfg)
    row_schema = build_openapi(settings)["components"]["schemas"]["FisherRow"]
    openapi = _schema_types(row_schema["properties"]["probe"])
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    pack = load_pack(path, base_url="https://lc2.example.go.th")
    doc = next(f for f in pack.services[0].fields if f.path == "probe")
    svc_rt = settings.services["fisher"]
    values = [r["probe"] for r in svc_rt.mapper.map_rows(list(svc_rt.sandbox_rows)).rows]
    return openapi, set(doc.type.split(" or ")), values


def test_a_lookup_with_mixed_value_types_is_typed_alike_in_openapi_and_the_pack(
    tmp_path: Path,
) -> None:
    field = {"column": "SEX", "transform": [{"lookup": {"map": {"1": 10, "2": "สิบ"}}}]}
    openapi, pack, values = _views(tmp_path, field)
    assert openapi == pack == {"integer", "string"}
    assert values and {json_type(v) for v in values if v is not None} <= openapi


def _case(info: TransformInfo) -> dict[str, Any]:
    """An output field on one column with ``info``'s example spec, after what it reads."""
    before: list[Any] = {"code": [], "full_name": ["clean"]}.get(info.reads, [])
    return {"column": "PROBE", "transform": [*before, info.spec]}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_transform_describes_itself_completely(name: str) -> None:
    info = REGISTRY[name]
    assert info.name == name and info.summary.strip()
    assert info.reads in ("value", "full_name", "code", "citizen_id", "date")
    run = compile_chain([info.spec])
    out = run(info.sample)
    assert out is not None, "the sample must give a value"
    types = chain_types([info.spec], {})
    if types is not None:
        assert json_type(out) in types
    chain_note([info.spec], {})  # a note for the example arguments, perhaps empty
    for args in info.variants:  # every variant is a valid spec
        compile_chain([{name: args}])
    # the legacy form of what it yields reads back as the same value
    if info.reads in ("value", "citizen_id", "date"):
        assert run(legacy_value([info.spec], out)) == out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_openapi_the_pack_and_the_sandbox_agree_on_every_transform(
    name: str, tmp_path: Path
) -> None:
    info = REGISTRY[name]
    openapi, pack, values = _views(tmp_path, _case(info))
    described = chain_types(_case(info)["transform"], {})
    assert openapi == set(described or ())
    assert any(v is not None for v in values), "the sandbox gives no value"
    if described:
        assert pack == described
        assert {json_type(v) for v in values if v is not None} <= described


def test_a_new_transform_is_one_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def build(args: object, ctx: object) -> Any:
        return lambda value: int(str(value).strip()) * 7

    entry = TransformInfo(
        "weeks_to_days",
        "a number of weeks as days (an integer)",
        build,
        sample=" 2",
        yields=lambda args, given, lookups: frozenset({"integer"}),
        legacy=lambda args, value: str(int(str(value)) // 7),
    )
    monkeypatch.setitem(registry._ENTRIES, entry.name, entry)
    assert "weeks_to_days" in TRANSFORMS
    openapi, pack, values = _views(tmp_path, {"column": "PROBE", "transform": ["weeks_to_days"]})
    assert openapi == pack == {"integer"}
    assert values and all(isinstance(v, int) for v in values)
