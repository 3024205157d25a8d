"""``{param}`` templates: request parts filled per call with validated parameters.

Compiled once at config load (an undeclared parameter is a config error with
its YAML path); rendering is a join of literals and values.  Escaping belongs
to the caller, which knows where the text goes (URL path, XML body, header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.adapter import PrepareError

__all__ = ["Rendered", "Template", "compile_template", "compile_text", "text_of"]

Rendered = Callable[[Mapping[str, object]], object]

_REF = re.compile(r"\{\{|\}\}|\{([A-Za-z][A-Za-z0-9_]*)\}|[{}]")


@dataclass(frozen=True, slots=True)
class Template:
    """A string with ``{param}`` references (``{{``/``}}`` for literal braces)."""

    parts: tuple[tuple[bool, str], ...]  # (is_reference, literal text or parameter name)

    @property
    def whole(self) -> str | None:
        """The parameter name when the template is exactly one reference."""
        if len(self.parts) == 1 and self.parts[0][0]:
            return self.parts[0][1]
        return None

    def render(self, params: Mapping[str, object], escape: Callable[[str], str] = str) -> str:
        return "".join(escape(text_of(params.get(v))) if ref else v for ref, v in self.parts)


def text_of(value: object) -> str:
    """A value as it is written into text: None empty, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_text(text: str, declared: Sequence[str], where: tuple[str | int, ...]) -> Template:
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _REF.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos : m.start()]))
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append((False, token[0]))
        elif m.group(1) is None:
            raise PrepareError(
                f"unbalanced {token!r}: write {token * 2} for a literal brace", where
            )
        else:
            name = m.group(1)
            if name not in declared:
                raise PrepareError(
                    f"{{{name}}} is not a declared parameter "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                    where,
                )
            parts.append((True, name))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return Template(tuple(parts))


def compile_template(
    value: object, declared: Sequence[str], where: tuple[str | int, ...] = ()
) -> Rendered:
    """A YAML structure whose strings may hold ``{param}``: a string that is one
    reference becomes the parameter's own value (a number stays a number, a
    missing optional parameter ``None``); other strings are formatted."""
    if isinstance(value, str):
        tpl = compile_text(value, declared, where)
        whole = tpl.whole
        if whole is not None:
            return lambda p: p.get(whole)
        if not any(ref for ref, _ in tpl.parts):
            literal = tpl.render({})
            return lambda p: literal
        return tpl.render
    if isinstance(value, Mapping):
        items = [
            (str(k), compile_template(v, declared, (*where, str(k)))) for k, v in value.items()
        ]
        return lambda p: {k: f(p) for k, f in items}
    if isinstance(value, list):
        elems = [compile_template(v, declared, (*where, i)) for i, v in enumerate(value)]
        return lambda p: [f(p) for f in elems]
    return lambda p: value
