"""The columns a SOAP service's rows will have, read from the WSDL's types.

``check --connect`` asks for them: the row path of a service is walked
through the operation's output element as :func:`adapters._xml.rows_from_xml`
walks an answer, and the row element's type is flattened to column names as
:func:`adapters._xml.flatten_element` flattens a row (``a.b`` for nested
elements, ``@x`` for attributes).  zeep parses the types; only this walk is
ours.
"""

from __future__ import annotations

from typing import Any

from adapters._xml import RowPath
from gateway.adapter import PrepareError

__all__ = ["row_columns"]


def _children(el: Any) -> list[Any]:
    elements = getattr(el.type, "elements", None)
    return [child for _, child in elements] if elements else []


def _attributes(el: Any) -> list[str]:
    attributes = getattr(el.type, "attributes", None)
    return [str(name) for name, _ in attributes] if attributes else []


def _flatten(el: Any, prefix: str, out: set[str]) -> None:
    out.update(f"{prefix}@{a}" for a in _attributes(el))
    for child in _children(el):
        key = f"{prefix}{child.name}"
        if _children(child):
            _flatten(child, key + ".", out)
        else:
            out.add(key)
            out.update(f"{key}.@{a}" for a in _attributes(child))


def row_columns(operation: Any, rows: RowPath) -> list[str] | None:
    """Column names of the rows at ``rows`` in the operation's answer; None when the
    WSDL does not describe the answer as one element (RPC style, any-typed parts)."""
    body = getattr(getattr(operation, "output", None), "body", None)
    if body is None or getattr(body, "type", None) is None or not rows.segments:
        return None
    first = rows.segments[0]
    if first not in ("*", body.name):
        raise PrepareError(
            f"the WSDL's answer to {operation.name} is <{body.name}>, not <{first}>", ("rows",)
        )
    level = [body]
    for depth, name in enumerate(rows.segments[1:], start=1):
        found = [c for el in level for c in _children(el) if name in ("*", c.name)]
        if not found:
            have = sorted({c.name for el in level for c in _children(el)})
            where = "/".join(rows.segments[:depth])
            raise PrepareError(
                f"<{where}> has no element <{name}> in the WSDL "
                f"(it has: {', '.join(have) or 'none'})",
                ("rows",),
            )
        level = found
    out: set[str] = set()
    for el in level:
        if _children(el) or _attributes(el):
            _flatten(el, "", out)
        else:
            out.add(".")  # a row that is itself a simple element
    return sorted(out)
