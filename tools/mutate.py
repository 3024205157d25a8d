"""Mutation testing of the core modules: does a test fail when the code is subtly wrong?

    .venv/bin/python tools/mutate.py gateway/breaker.py            # 60 seeded mutants
    .venv/bin/python tools/mutate.py gateway/audit/chain.py --all  # every mutant
    .venv/bin/python tools/mutate.py --changed-since origin/main --sample 12 --strict

Each mutant is one small change of the module's syntax tree, of the kinds the
first mutation round of the project used: a flipped comparison (``<`` and
``<=``, ``==`` and ``!=``, ``in`` and ``not in``, ``is`` and ``is not``), an
integer or float constant plus or minus one, ``and`` and ``or`` swapped, an
arithmetic or bitwise operator swapped, a statement of a function deleted, a
``return X`` turned into ``return None``.  A sample of them (seeded: the same
module gives the same mutants every time) is run against the module's own
test files, listed with the survivors known to be equivalent in
tools/mutation.yaml.  A mutant is *killed* when a test fails or it times out.

Written here rather than taken from mutmut or cosmic-ray: their operator sets
differ from the kinds above (string mutations would dominate), so kill rates
would not compare with the first round; both also want a run of the whole
suite, which takes minutes here, before the first mutant.

Each mutant runs in a fork of one process that has already imported the
third-party libraries the tests use; the mutated module is compiled from the
changed tree and served by an import hook, so no file is ever rewritten.
Tests that start the gateway as a separate process do not see the mutant:
the mapping lists in-process tests only.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tools" / "mutation.yaml"
PROJECT = ("gateway", "adapters", "tests", "config", "tools")

_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINARY: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_DELETABLE = (
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Raise,
    ast.Assert,
    ast.Delete,
    ast.Continue,
    ast.Break,
)


@dataclass(frozen=True, slots=True)
class Mutant:
    index: int  # position among the module's candidates, in tree order
    variant: int  # which change of that candidate (a constant has two: -1 and +1)
    line: int
    where: str  # the enclosing function or class
    before: str
    after: str
    twin: int = 1  # the n-th mutant of the same text in the same function

    @property
    def key(self) -> str:
        """Names the mutant across edits elsewhere in the file (no line number)."""
        key = f"{self.where}: {self.before} -> {self.after}"
        return key if self.twin == 1 else f"{key} #{self.twin}"


@dataclass(slots=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout | equivalent
    seconds: float


@dataclass(slots=True)
class ModuleReport:
    path: str
    total: int
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, *status: str) -> int:
        return sum(o.status in status for o in self.outcomes)


# -- finding mutants ---------------------------------------------------------------------------


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """Child nodes in a fixed order, leaving out annotations (mutating them changes nothing)."""
    for name, value in ast.iter_fields(node):
        if name in ("annotation", "returns", "type_comment", "decorator_list"):
            continue
        if isinstance(node, ast.AnnAssign) and name == "target":
            continue
        if isinstance(value, ast.AST):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, ast.AST))


def _is_constant(stmt: ast.AST) -> bool:
    """A docstring or ``...``: deleting it changes nothing."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _skipped(node: ast.AST) -> bool:
    """Code that never runs in the gateway: type-checking imports, ``__all__``."""
    if isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    ):
        return True
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
    )


def _variants(node: ast.AST, in_function: bool) -> int:
    """How many mutants this node gives."""
    if isinstance(node, ast.Compare):
        return len(node.ops)
    if isinstance(node, ast.Constant):
        return 2 if type(node.value) in (int, float) else 0
    if isinstance(node, ast.BoolOp):
        return 1
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINARY:
        return 1 + (isinstance(node, ast.AugAssign) and in_function)
    if isinstance(node, ast.Return):
        value = node.value
        return int(
            value is not None and not (isinstance(value, ast.Constant) and value.value is None)
        )
    if isinstance(node, _DELETABLE) and in_function and not _is_constant(node):
        return 1
    return 0


Candidate = tuple[ast.AST, int, str, ast.AST | None, ast.AST | None]


def _candidates(tree: ast.Module) -> Iterator[Candidate]:
    """(node, variants, enclosing name, parent, statement) of every mutable node, in order."""

    def walk(
        node: ast.AST, where: str, in_function: bool, parent: ast.AST | None, stmt: ast.AST | None
    ) -> Iterator[Candidate]:
        if _skipped(node):
            return
        if isinstance(node, ast.stmt):
            stmt = node
        n = _variants(node, in_function)
        if n:
            yield node, n, where, parent, stmt
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            where = f"{where}.{node.name}" if where != "<module>" else node.name
            in_function = in_function or not isinstance(node, ast.ClassDef)
        for child in _children(node):
            yield from walk(child, where, in_function, node, stmt)

    yield from walk(tree, "<module>", False, None, None)


def _mutate(node: ast.AST, variant: int) -> ast.AST:
    """The replacement of ``node`` (a changed copy, or a new node)."""
    new = copy.copy(node)
    if isinstance(new, ast.Compare):
        ops = list(new.ops)
        ops[variant] = _COMPARE[type(ops[variant])]()
        new.ops = ops
    elif isinstance(new, ast.Constant):
        assert isinstance(new.value, int | float)
        new.value = new.value + (-1 if variant == 0 else 1)
    elif isinstance(new, ast.BoolOp):
        new.op = ast.Or() if isinstance(new.op, ast.And) else ast.And()
    elif isinstance(new, ast.BinOp | ast.AugAssign) and variant == 0 and type(new.op) in _BINARY:
        new.op = _BINARY[type(new.op)]()
    elif isinstance(new, ast.Return):
        new.value = ast.Constant(None)
    else:  # a statement deleted
        new = ast.Pass()
    return ast.copy_location(new, node)


def _text(node: ast.AST) -> str:
    return ast.unparse(node).splitlines()[0]


def _short(text: str) -> str:
    return text if len(text) <= 96 else text[:93] + "..."


def _swap(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put ``new`` where ``old`` is among the children of ``parent``."""
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
        elif isinstance(value, list) and any(v is old for v in value):
            setattr(parent, name, [new if v is old else v for v in value])


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    found: list[Mutant] = []
    seen: dict[tuple[str, str, str], int] = {}
    for index, (node, n, where, parent, stmt) in enumerate(_candidates(tree)):
        shown = node
        if isinstance(node, ast.Constant):  # a bare number says little: show what holds it
            if isinstance(parent, ast.expr):
                shown = parent
            elif stmt is not None and not hasattr(stmt, "body"):
                shown = stmt
        for variant in range(n):
            new = _mutate(node, variant)
            before = _text(shown)
            if shown is node:
                after = _text(new)
            else:
                assert parent is not None
                _swap(parent, node, new)
                after = _text(shown)
                _swap(parent, new, node)
            line: int = node.lineno  # type: ignore[attr-defined]
            twin = seen[where, before, after] = seen.get((where, before, after), 0) + 1
            found.append(Mutant(index, variant, line, where, before, after, twin))
    return found


def compile_mutant(source: str, path: str, mutant: Mutant) -> CodeType:
    tree = ast.parse(source)
    for index, (node, _, _, parent, _) in enumerate(_candidates(tree)):
        if index == mutant.index:
            assert parent is not None
            _swap(parent, node, _mutate(node, mutant.variant))
            break
    else:
        raise LookupError(f"no mutant {mutant.index} in {path}")
    return compile(ast.fix_missing_locations(tree), path, "exec")


def sample(found: Sequence[Mutant], size: int | None, seed: int) -> list[Mutant]:
    if size is None or size >= len(found):
        return list(found)
    picked = random.Random(seed).sample(range(len(found)), size)
    return [found[i] for i in picked]  # in the seeded order: a smaller sample is its start


# -- running one mutant ------------------------------------------------------------------------


class _Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated code for one module name; every other import is left alone."""

    def __init__(self, name: str, path: str, code: CodeType) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


def _pytest_args(tests: Sequence[str]) -> list[str]:
    # stop at the first failure; no cache and no Hypothesis database, so that one mutant's
    # failing examples never decide another's outcome
    return [
        *tests,
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:schemathesis",  # seconds to load, and tests/conftest.py unregisters it anyway
        "--hypothesis-seed=0",
        # plugins imported before pytest starts (to warm the fork) are not assertion-rewritten
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]


def _child(module: str, path: str, code: CodeType | None, tests: Sequence[str], log: str) -> None:
    os.setpgid(0, 0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    status = 3
    try:
        import hypothesis
        import pytest

        hypothesis.settings.register_profile("mutation", database=None, derandomize=True)
        hypothesis.settings.load_profile("mutation")
        if code is not None:
            sys.meta_path.insert(0, _Hook(module, path, code))
        status = int(pytest.main(_pytest_args(tests)))
    except BaseException:
        traceback.print_exc()
        status = 99  # a fault of the runner, not of the mutant
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def run_one(
    module: str, path: str, code: CodeType | None, tests: Sequence[str], timeout: float
) -> tuple[str, float, str]:
    """(killed | survived | timeout | error, seconds, log) of one run in a fork."""
    with tempfile.NamedTemporaryFile(prefix="mutant-", suffix=".log", delete=False) as f:
        log = f.name
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        _child(module, path, code, tests, log)
    status = "error"
    deadline = start + timeout
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            code_ = os.waitstatus_to_exitcode(wait_status)
            # pytest: 0 all passed; 1 a test failed, 2 a collection error, 3 an internal
            # error, 4 conftest.py failed to import: the mutant broke something, as long as
            # the clean run passed (checked first). Our own faults exit 99 (see _child).
            status = "survived" if code_ == 0 else "error" if code_ == 99 else "killed"
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "timeout"
            break
        time.sleep(0.02)
    text = Path(log).read_text(encoding="utf-8", errors="replace")
    os.unlink(log)
    return status, time.monotonic() - start, text


def _warm(tests: Sequence[str]) -> None:
    """Import in this process the third-party modules the tests import: forks start warm.

    The project's own modules are not imported here: a child imports them afresh, with the
    mutant in place (and registers its metrics once).
    """
    probe = (
        "import sys, importlib\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import pytest\n"
        "for m in sys.argv[1:]:\n"
        "    importlib.import_module(m)\n"
        f"print('\\n'.join(sorted(n for n in sys.modules if n.split('.')[0] not in {PROJECT!r})))\n"
    )
    files = {t.partition("::")[0] for t in tests}
    names = [t.removesuffix(".py").replace("/", ".") for t in sorted(files) if (ROOT / t).exists()]
    out = subprocess.run(
        [sys.executable, "-c", probe, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in out.split():
        if name.startswith("_") or name == "__main__":
            continue
        try:
            importlib.import_module(name)
        except Exception:  # some are private or need what this machine lacks
            continue


# -- the command -------------------------------------------------------------------------------


def load_config() -> dict[str, dict[str, object]]:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    modules: dict[str, dict[str, object]] = data["modules"]
    return modules


def changed_modules(base: str, config: dict[str, dict[str, object]]) -> list[str]:
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD", "--", *config],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [p for p in out.split() if p in config]


def test_module(
    path: str,
    entry: dict[str, object],
    *,
    size: int | None,
    seed: int,
    timeout: float | None,
    say: bool,
) -> ModuleReport:
    source = (ROOT / path).read_text(encoding="utf-8")
    module = path.removesuffix(".py").replace("/", ".")
    tests = [str(t) for t in entry["tests"]]  # type: ignore[attr-defined]
    tests = [t for t in tests if (ROOT / t.partition("::")[0]).exists()]
    equivalent = dict(entry.get("equivalent") or {})  # type: ignore[call-overload]
    found = mutants(source)
    report = ModuleReport(path, len(found))
    if not tests:  # none of its test files exists (yet): nothing can kill a mutant
        report.outcomes = [Outcome(m, "survived", 0.0) for m in sample(found, size, seed)]
        return report
    status, took, log = run_one(module, str(ROOT / path), None, tests, 3600)
    if status != "survived":
        raise SystemExit(f"{path}: its tests fail without a mutant:\n{log[-3000:]}")
    limit = timeout if timeout is not None else max(20.0, 10 * took)
    for m in sample(found, size, seed):
        code = compile_mutant(source, str(ROOT / path), m)
        status, took, log = run_one(module, str(ROOT / path), code, tests, limit)
        if status == "error":
            raise SystemExit(f"{path}: mutant {m.key} could not be run:\n{log[-3000:]}")
        if status == "survived" and m.key in equivalent:
            status = "equivalent"
        report.outcomes.append(Outcome(m, status, took))
        if say:
            mark = {"killed": ".", "timeout": "T", "equivalent": "e"}.get(status, "S")
            print(mark, end="", flush=True)
    if say:
        print()
    return report


def render(report: ModuleReport) -> str:
    n = len(report.outcomes)
    killed = report.count("killed", "timeout")
    eq = report.count("equivalent")
    rate = kill_rate(report)
    lines = [
        f"{report.path}: {killed}/{n} killed, {eq} equivalent, "
        f"{report.count('survived')} survived ({rate:.1f} % of the non-equivalent; "
        f"{report.total} mutants in all)"
    ]
    for o in report.outcomes:
        if o.status in ("survived", "equivalent"):
            m = o.mutant
            lines.append(f"  {o.status:10} {report.path}:{m.line}  {m.where}")
            lines.append(f"      - {_short(m.before)}")
            lines.append(f"      + {_short(m.after)}")
            lines.append(f"      key: {m.key!r}")
    return "\n".join(lines)


def kill_rate(report: ModuleReport) -> float:
    """Killed among the sampled mutants that are not equivalent, in percent."""
    counted = len(report.outcomes) - report.count("equivalent")
    return 100.0 * report.count("killed", "timeout") / counted if counted else 100.0


def summary_row(r: ModuleReport) -> str:
    n = len(r.outcomes)
    return (
        f"| `{r.path}` | {r.count('killed', 'timeout')} / {n} | {r.count('equivalent')} "
        f"| {r.count('survived')} | {kill_rate(r):.0f} % |"
    )


def _write_json(path: Path, reports: Sequence[ModuleReport]) -> None:
    data = [
        {
            "module": r.path,
            "mutants": r.total,
            "outcomes": [
                {"key": o.mutant.key, "line": o.mutant.line, "status": o.status} for o in r.outcomes
            ],
        }
        for r in reports
    ]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("modules", nargs="*", help="module files, as in tools/mutation.yaml")
    p.add_argument("--sample", type=int, default=60, help="mutants per module (default 60)")
    p.add_argument("--all", action="store_true", help="every mutant of each module")
    p.add_argument("--seed", type=int, default=23, help="seed of the sample (default 23)")
    p.add_argument("--timeout", type=float, help="seconds per mutant (default 10x the clean run)")
    p.add_argument("--changed-since", metavar="BASE", help="the listed modules changed since BASE")
    p.add_argument(
        "--fallback",
        type=int,
        metavar="N",
        help="with --changed-since: if no listed module changed, N mutants of every one",
    )
    p.add_argument("--list", action="store_true", help="list the sampled mutants, run nothing")
    p.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 if a mutant survives")
    args = p.parse_args(argv)
    config = load_config()
    modules = list(args.modules)
    size = None if args.all else args.sample
    if args.changed_since:
        try:
            modules += changed_modules(args.changed_since, config)
        except subprocess.CalledProcessError:
            print(f"mutation: cannot compare with {args.changed_since}", file=sys.stderr)
        if not modules and args.fallback:
            modules, size = list(config), args.fallback
    unknown = [m for m in modules if m not in config]
    if unknown:
        p.error(f"not in {CONFIG.relative_to(ROOT)}: {', '.join(unknown)}")
    if not modules:
        print("mutation: no listed module to test")
        return 0
    if args.list:
        for path in modules:
            for m in sample(mutants((ROOT / path).read_text(encoding="utf-8")), size, args.seed):
                print(f"{path}:{m.line}  {m.key}")
        return 0
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    _warm(sorted({str(t) for m in modules for t in config[m]["tests"]}))  # type: ignore[attr-defined]
    reports = []
    for path in dict.fromkeys(modules):
        print(f"mutating {path} ...", flush=True)
        report = test_module(
            path, config[path], size=size, seed=args.seed, timeout=args.timeout, say=True
        )
        reports.append(report)
        print(render(report), flush=True)
        if args.json:  # after each module: a long run stopped half-way keeps what it did
            _write_json(Path(args.json), reports)
    print()
    print("| module | killed | equivalent | survived | kill rate |")
    print("|---|---|---|---|---|")
    for r in reports:
        print(summary_row(r))
    survived = sum(r.count("survived") for r in reports)
    return 1 if args.strict and survived else 0


if __name__ == "__main__":
    sys.exit(main())
