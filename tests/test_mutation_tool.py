"""tools/mutate.py: the kinds of mutant it makes, a sample that never changes, its mapping."""

from __future__ import annotations

import textwrap
from types import ModuleType

import pytest

from tools.mutate import ROOT, Mutant, compile_mutant, load_config, mutants, sample

SOURCE = textwrap.dedent(
    '''
    """A module."""
    LIMIT = 6
    __all__ = ["f"]


    def f(a: int, b: int) -> int:
        """Docstring."""
        total = a + b
        if a < b and b != 0:
            total *= 2
        return total
    '''
)


def _run(m: Mutant, a: int, b: int) -> int | None:
    module = ModuleType("sample")
    exec(compile_mutant(SOURCE, "sample.py", m), module.__dict__)
    out: int | None = module.f(a, b)
    return out


def test_every_kind_of_mutant_is_made_and_named_without_its_line() -> None:
    keys = [m.key for m in mutants(SOURCE)]
    assert keys == [
        "<module>: LIMIT = 6 -> LIMIT = 5",
        "<module>: LIMIT = 6 -> LIMIT = 7",
        "f: total = a + b -> pass",
        "f: a + b -> a - b",
        "f: a < b and b != 0 -> a < b or b != 0",
        "f: a < b -> a <= b",
        "f: b != 0 -> b == 0",
        "f: b != 0 -> b != -1",
        "f: b != 0 -> b != 1",
        "f: total *= 2 -> total /= 2",
        "f: total *= 2 -> pass",
        "f: total *= 2 -> total *= 1",
        "f: total *= 2 -> total *= 3",
        "f: return total -> return None",
    ]
    # the same mutants, named alike, when lines above them move
    assert [m.key for m in mutants("\n\n" + SOURCE)] == keys


def test_a_compiled_mutant_behaves_as_its_name_says() -> None:
    by_key = {m.key: m for m in mutants(SOURCE)}
    assert _run(by_key["f: a + b -> a - b"], 1, 2) == -2
    assert _run(by_key["f: a < b -> a <= b"], 2, 2) == 8
    assert _run(by_key["f: return total -> return None"], 1, 2) is None
    assert _run(by_key["f: total *= 2 -> pass"], 1, 2) == 3


def test_the_sample_is_seeded_and_a_smaller_one_is_its_start() -> None:
    found = mutants(SOURCE)
    assert sample(found, 5, 23) == sample(found, 5, 23)
    assert sample(found, 3, 23) == sample(found, 5, 23)[:3]
    assert sample(found, 5, 23) != sample(found, 5, 24)
    assert sample(found, None, 23) == found


@pytest.mark.parametrize("module", sorted(load_config()))
def test_every_listed_module_and_test_file_exists(module: str) -> None:
    entry = load_config()[module]
    assert (ROOT / module).is_file()
    tests = entry["tests"]
    assert isinstance(tests, list) and tests
    for t in tests:
        assert (ROOT / str(t).partition("::")[0]).is_file(), t
    keys = {m.key for m in mutants((ROOT / module).read_text(encoding="utf-8"))}
    equivalent = entry.get("equivalent") or {}
    assert isinstance(equivalent, dict)
    stale = sorted(set(equivalent) - keys)
    assert not stale, f"equivalent mutants no longer made from {module}: {stale}"
    assert all(isinstance(why, str) and why.strip() for why in equivalent.values())
