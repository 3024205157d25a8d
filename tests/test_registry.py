"""One registration: the entry points, the registry's view and the README's table agree."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib.metadata import EntryPoint, PackageNotFoundError
from pathlib import Path

import pytest

from gateway import registry
from gateway.adapter import AdapterFactory

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    entry_points: dict[str, str] = project["entry-points"][registry.GROUP]
    return entry_points


def _readme_types() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### Backends", 1)[1].split("\n\n", 2)[1]
    types: set[str] = set()
    for line in table.splitlines()[2:]:
        first_cell = line.split("|")[1]
        types.update(re.findall(r"`([a-z0-9_]+)`", first_cell))
    return types


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.adapter_factories.cache_clear()
    yield
    registry.adapter_factories.cache_clear()


def test_pyproject_registry_and_readme_name_the_same_adapters(fresh_registry: None) -> None:
    declared = _declared()
    seen = registry.adapter_factories()
    assert {k: seen[k] for k in declared} == declared
    assert _readme_types() == set(declared)
    for name in declared:
        factory: AdapterFactory = registry.get_factory(name)
        assert factory.type_name == name


def test_a_source_checkout_reads_its_pyproject(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without package metadata (never installed) the built-ins still resolve."""

    def not_installed(name: str) -> None:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(registry, "distribution", not_installed)
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert registry.adapter_factories() == _declared()
    assert registry.get_factory("sqlite").type_name == "sqlite"


def test_an_installed_gateway_ignores_a_pyproject(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, only the metadata counts: a stray pyproject.toml adds nothing."""
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert registry.adapter_factories() == {}


def test_pyproject_of_another_project_is_not_read(tmp_path: Path) -> None:
    other = tmp_path / "pyproject.toml"
    other.write_text(
        '[project]\nname = "other"\n[project.entry-points."lc2_gateway.adapters"]\n'
        'x = "x:FACTORY"\n',
        encoding="utf-8",
    )
    assert registry.source_checkout_adapters(other) == {}
    assert registry.source_checkout_adapters(tmp_path / "missing.toml") == {}


def test_two_packages_claiming_one_type_are_both_named(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = [
        EntryPoint("csv", "adapters.files:CSV", registry.GROUP),
        EntryPoint("csv", "vendor_csv:FACTORY", registry.GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: claims)
    with pytest.raises(registry.AdapterNameClash, match=r"adapters\.files:CSV.*vendor_csv"):
        registry.adapter_factories()
