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
                key = self._ctor.construct_object(key_node, deep=True)
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
        value = self._ctor.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            value = self._substitute(value, path, node.start_mark.line + 1)
        return value

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


def parse_yaml(
    text: str,
    *,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> LoadedYaml:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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
