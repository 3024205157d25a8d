"""YAML in, plain Python data out, with the line of every value remembered.

PyYAML gives marks only on its node graph, so the document is composed to
nodes and converted here, recording ``path -> line`` on the way; validation
errors can then name the YAML line an operator has to fix.  ``${VAR}`` and
``${VAR:-default}`` are substituted in scalars at this point, and the paths of
substituted values are kept so secrets can be required to come from the
environment.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "LoadedYaml", "Path_", "Problem", "load_yaml", "parse_yaml"]

Path_ = tuple[str | int, ...]

_CLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
# what libyaml reads otherwise than PyYAML's own parser: tabs, a lone CR, NEL, LS, PS or BOM,
# a "?" indicator, tags ("!" outside " != "), a block scalar header touching its "#" comment
_PY_ONLY = re.compile(
    r"[\t\x85\u2028\u2029\ufeff]|\r(?!\n)|\?(?:\s|$)|(?<! )!|!(?!= )|[|>][-+0-9]*#"
)
_STR = "tag:yaml.org,2002:str"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path_
    line: int | None
    message: str

    def render(self, source: str = "") -> str:
        where = ".".join(str(p) for p in self.path) or "(top level)"
        loc = f"{source}:{self.line}: " if self.line else (f"{source}: " if source else "")
        return f"{loc}{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found, never only the first."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(p.render(source) for p in problems))


@dataclass(slots=True)
class LoadedYaml:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    from_env: set[Path_] = field(default_factory=set)
    source: str = ""
    base_dir: Path = Path(".")
    digest: str = ""  # of the file's text, before ${VAR} substitution: no secret goes in

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


class _Converter:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.lines: dict[Path_, int] = {}
        self.from_env: set[Path_] = set()
        self.problems: list[Problem] = []
        self._ctor = yaml.SafeLoader(stream="")

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            self._ctor.flatten_mapping(node)  # resolves YAML merge keys (<<)
            for key_node, value_node in node.value:
                key = self._construct(key_node)
                if not isinstance(key, (str, int)):
                    self.problems.append(
                        Problem(path, key_node.start_mark.line + 1, "keys must be strings")
                    )
                    continue
                if key in out:
                    self.problems.append(
                        Problem((*path, key), key_node.start_mark.line + 1, "duplicate key")
                    )
                out[key] = self.convert(value_node, (*path, key))
                # an error about an entry is best shown on its key's line
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._construct(node)
        if isinstance(value, str) and "${" in value:
            value = self._substitute(value, path, node.start_mark.line + 1)
        return value

    def _construct(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
            return node.value  # what the constructor returns for a string, at half the cost
        return self._ctor.construct_object(node, deep=True)

    def _substitute(self, value: str, path: Path_, line: int) -> str:
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problems.append(Problem(path, line, f"environment variable {name} is not set"))
            return ""

        self.from_env.add(path)
        return _ENV.sub(repl, value)


def _question_mark_in_flow(node: yaml.Node) -> bool:
    """Does a plain scalar inside ``[...]`` or ``{...}`` hold a ``?`` (libyaml allows it)?"""
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, in_flow = stack.pop()
        if isinstance(n, yaml.ScalarNode):
            if in_flow and not n.style and "?" in n.value:
                return True
        elif isinstance(n, yaml.SequenceNode):
            flow = in_flow or bool(n.flow_style)
            stack.extend((item, flow) for item in n.value)
        elif isinstance(n, yaml.MappingNode):
            flow = in_flow or bool(n.flow_style)
            stack.extend((item, flow) for pair in n.value for item in pair)
    return False


def _compose(text: str) -> yaml.Node | None:
    """The node graph, by libyaml when PyYAML has it: ten times faster than PyYAML's own
    parser, which took a third of the start-up of a config of 50 services.

    The two parsers disagree on a few inputs (``_PY_ONLY``, a ``?`` in a flow scalar, the
    line of a document that is one empty scalar): such a document, and any libyaml refuses,
    is composed by PyYAML alone, so every document is accepted or refused as before, with
    the same message and the same lines.
    """
    if _CLoader is not None and _PY_ONLY.search(text) is None:
        try:
            node: yaml.Node | None = yaml.compose(text, Loader=_CLoader)
        except (yaml.YAMLError, RecursionError):
            pass
        else:
            if node is None or not (
                isinstance(node, yaml.ScalarNode) or ("?" in text and _question_mark_in_flow(node))
            ):
                return node
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node


def parse_yaml(
    text: str,
    *,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> LoadedYaml:
    try:
        node = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem((), line, f"YAML syntax: {exc}")], source) from None
    if node is None:
        raise ConfigError([Problem((), None, "the file is empty")], source)
    conv = _Converter(os.environ if env is None else env)
    data = conv.convert(node, ())
    if conv.problems:
        raise ConfigError(conv.problems, source)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return LoadedYaml(data, conv.lines, conv.from_env, source, base_dir or Path("."), digest)


def load_yaml(path: Path, env: Mapping[str, str] | None = None) -> LoadedYaml:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem((), None, f"cannot read: {exc}")], str(path)) from None
    return parse_yaml(text, source=str(path), env=env, base_dir=path.resolve().parent)
