"""Generated sandbox rows look real and fit together, in every example config.

The rows are checked as mapped (what LC2 gets from the sandbox URL) by
tests/sample_checks.py, whose place names come from the demo database.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.build import build_settings
from gateway.config.loader import ConfigError, parse_yaml
from gateway.describe.pack import Pack, load_pack
from tests.sample_checks import rows_problems
from tests.support import (
    PASSWORD_HASH,
    SQLITE_QUERY,
    base_config,
    fisher_service,
    make_sqlite_db,
    plain_pid,
    settings_from,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p for p in (ROOT / "config").glob("*.yaml") if not p.name.startswith("holidays"))
BASE = "https://lc2.fisheries.example.go.th"
ENV = {
    "LC2_PASSWORD_HASH": PASSWORD_HASH,
    "LEGACY_DB_PASSWORD": "x",
    "EXPORTS_AUDIT_KEY": "k" * 40,
    "VESSELS_AUDIT_KEY": "k" * 40,
    "VESSELS_SOAP_PASSWORD": "x",
}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def _types(pack: Pack, service: str) -> dict[str, str]:
    svc = next(s for s in pack.services if s.name == service)
    return {f.path: f.type for f in svc.fields}


def _generated(
    path: Path, service: str, count: int, seed: int | None = None
) -> list[dict[str, Any]]:
    """``count`` generated rows of ``service``, mapped as the sandbox URL serves them."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    sandbox = data["services"][service].setdefault("sandbox", {})
    sandbox.pop("rows", None)
    sandbox["generate"] = count
    if seed is not None:
        sandbox["seed"] = seed
    loaded = parse_yaml(
        yaml.safe_dump(data, allow_unicode=True), source=str(path), base_dir=path.parent
    )
    svc = build_settings(loaded, create_key_file=False).services[service]
    return svc.mapper.map_rows(list(svc.sandbox_rows)).rows


def _at(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


@functools.cache
def _pack(path: Path, service: str) -> Pack:
    return load_pack(path, base_url=BASE, services=[service])


def _services(path: Path) -> list[tuple[Path, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(path, name) for name in data["services"]]


@pytest.mark.parametrize(
    ("path", "service"),
    [case for path in CONFIGS for case in _services(path)],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_generated_rows_fit_their_fields_in_every_example_config(
    path: Path, service: str, seed: int
) -> None:
    pack = _pack(path, service)
    rows = _generated(path, service, 12, seed)
    assert len(rows) == 12
    assert rows_problems(rows, _types(pack, service)) == []
    # every field that reads a column gets a value (nothing left null for want of an idea)
    for row in rows:
        for key, value in row.items():
            assert value is not None, key
    # declared widths hold: a zfill field has exactly its width
    svc = next(s for s in pack.services if s.name == service)
    for f in svc.fields:
        if m := re.fullmatch(r"zero-padded to ([0-9]+) characters", f.format_en):
            assert {len(str(_at(r, f.path))) for r in rows} == {int(m.group(1))}, f.path


def test_demo_fisher_rows_look_real() -> None:
    rows = _generated(ROOT / "config" / "demo.yaml", "fisher", 20)
    for row in rows:
        born = row["dateOfBirth"]
        assert row["registrationDate"] > born
        # registration numbers look like the register's own: PR-<BE year registered>-NNNNNN
        be_year = int(row["registrationDate"][:4]) + 543
        assert re.fullmatch(rf"PR-{be_year}-[0-9]{{6}}", row["registrationNo"]), row
        assert row["genderDesc"] == {"1": "ชาย", "2": "หญิง"}[row["genderCode"]]
        assert row["titleDesc"] in (("นาย",) if row["genderCode"] == "1" else ("นาง", "นางสาว"))
        address = row["address"]
        assert re.fullmatch(r"[0-9]{6}", address["subdistrictCode"])
        assert address["subdistrictCode"].startswith(address["districtCode"])
    assert len({r["registrationNo"] for r in rows}) == len(rows)
    assert len({r["personalId"] for r in rows}) == 1  # one sandbox person: the sample's ID


def test_the_sample_call_for_an_id_returns_rows_of_that_id() -> None:
    pack = load_pack(ROOT / "config" / "demo.yaml", base_url=BASE)
    for svc in pack.services:
        (param,) = svc.params
        assert svc.sample_response is not None and svc.sample_rows > 0, svc.name
        data = yaml.safe_load(svc.sample_response)["data"]
        ids = {row.get("personalId") or row.get("ownerPersonalId") for row in data}
        assert ids == {param.example}, svc.name


def test_match_on_the_key_parameter_is_the_default(tmp_path: Path) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    services = {
        "fisher": fisher_service("legacy", SQLITE_QUERY),
        "everyone": fisher_service(
            "legacy", SQLITE_QUERY, path="everyone", sandbox={"generate": 2, "match": {}}
        ),
    }
    settings = settings_from(base_config(tmp_path, {"legacy": sqlite_backend(db)}, services))
    fisher = settings.services["fisher"]
    assert fisher.sandbox_match == {"personalId": "PID"}
    assert {plain_pid(str(r["PID"])) for r in fisher.sandbox_rows} != set()
    assert settings.services["everyone"].sandbox_match == {}  # an explicit {} turns it off


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = _generated(ROOT / "config" / "demo.yaml", "fisher", 5)
    b = _generated(ROOT / "config" / "demo.yaml", "fisher", 5)
    assert a == b


def test_like_names_a_column_of_the_mapping(tmp_path: Path) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY, sandbox={"generate": 1, "like": {"REG": "R-1"}})
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    with pytest.raises(ConfigError) as err:
        settings_from(cfg)
    (problem,) = err.value.problems
    assert problem.path == ("services", "fisher", "sandbox", "like", "REG")
    assert "no output field reads the column REG" in problem.message
