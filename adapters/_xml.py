"""Reading upstream documents safely, and turning them into rows by element path.

Upstream XML is untrusted input: a compromised or buggy legacy server must not
make the gateway read a local file (XXE), fetch a URL (SSRF through a DTD) or
expand entities until memory runs out.  So a document with a DTD is refused
before and after parsing (a SOAP message may not carry one at all, SOAP 1.1
section 3 and 1.2 part 1 section 5), entities are never resolved, libxml2
keeps its depth and size limits (``huge_tree`` off) and never touches the
network.  The size of the input is capped by the caller before it gets here.

Rows are found by a path of element names (JSON: keys) and each row is
flattened into ``{"owner.firstName": ..., "@status": ..., "gear[1].type": ...}``
so the output mapping's ``column:`` can name any value in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from lxml import etree  # type: ignore[import-untyped]

__all__ = [
    "MalformedDocument",
    "RowPath",
    "SoapFault",
    "UnsafeDocument",
    "find_soap_body",
    "flatten_element",
    "flatten_json",
    "parse_json",
    "parse_xml",
    "rows_from_json",
    "rows_from_xml",
    "value_at_json",
    "value_at_xml",
]

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
_PROLOG_SPACE = b" \t\r\n"


class MalformedDocument(ValueError):
    """Not well-formed XML or JSON, or not the document the service expects."""


class UnsafeDocument(ValueError):
    """A document carrying a DTD or entity declarations: refused unread."""


@dataclass(frozen=True, slots=True)
class SoapFault:
    code: str  # "Client.NoRecord" (1.1) or "Sender.NoRecord" (1.2): prefixes removed
    string: str


@cache
def _parser(encoding: str | None) -> Any:
    # One parser per encoding override; lxml parsers are not shared across threads
    # here because every parse runs on the event loop thread.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        encoding=encoding,
    )


def _prolog_has_doctype(data: bytes) -> bool:
    """True if a DOCTYPE comes before the root element (ASCII-compatible encodings)."""
    i, n = 0, len(data)
    if data.startswith(b"\xef\xbb\xbf"):
        i = 3
    while i < n:
        while i < n and data[i] in _PROLOG_SPACE:
            i += 1
        if data.startswith(b"<?", i):
            end = data.find(b"?>", i)
        elif data.startswith(b"<!--", i):
            end = data.find(b"-->", i)
        else:
            return data[i : i + 9].upper() == b"<!DOCTYPE"
        if end < 0:
            return False
        i = end + 2
    return False


def parse_xml(data: bytes, encoding: str | None = None) -> Any:
    """The root element of ``data``; raises :class:`UnsafeDocument` or :class:`MalformedDocument`.

    ``encoding`` overrides what the document declares, for legacy servers that
    send TIS-620 without saying so.
    """
    if _prolog_has_doctype(data):
        raise UnsafeDocument("the answer carries a DTD (DOCTYPE), which is never accepted")
    try:
        root = etree.fromstring(data, _parser(encoding))
    except etree.XMLSyntaxError as exc:
        # libxml2 refuses entity bombs while parsing, before any expansion
        if "amplification" in str(exc) or "entity" in str(exc).lower():
            raise UnsafeDocument("the answer declares or expands XML entities") from None
        raise MalformedDocument(f"not well-formed XML: {_short(exc)}") from None
    except (ValueError, LookupError) as exc:  # unknown encoding, str with a declaration
        raise MalformedDocument(f"unreadable XML: {_short(exc)}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeDocument("the answer carries a DTD (DOCTYPE), which is never accepted")
    return root


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedDocument(f"not valid JSON: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    # libxml2 messages quote no document content, only positions; still, keep them short
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text[:160]


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments and processing instructions are removed, entities are not tags
    return tag.rpartition("}")[2]


def _strip_prefix(qname: str) -> str:
    return qname.strip().rpartition(":")[2]


# --- paths ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowPath:
    """``a/b/c``: element names (namespace prefixes ignored) or JSON keys; ``*`` is any."""

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> RowPath:
        text = text.strip().strip("/")
        if not text or text == ".":
            return cls(())
        segments = tuple(s.strip() for s in text.split("/"))
        if any(not s for s in segments):
            raise ValueError(f"empty segment in path {text!r}")
        return cls(tuple(_strip_prefix(s) if s != "*" else s for s in segments))

    def __str__(self) -> str:
        return "/".join(self.segments) or "."


def _matches(el: Any, name: str) -> bool:
    return isinstance(el.tag, str) and (name == "*" or _local(el.tag) == name)


def _children(el: Any, name: str) -> Iterator[Any]:
    return (child for child in el if _matches(child, name))


def rows_from_xml(tops: Sequence[Any], path: RowPath, limit: int) -> list[dict[str, object]]:
    """Rows at ``path``, whose first segment names one of ``tops``.

    ``tops`` are the children of the SOAP Body (the operation's response
    wrapper) or the document's root element.  If the first segment matches
    none of them the answer is not the one the service expects and
    :class:`MalformedDocument` is raised; deeper segments that are missing
    mean no rows.
    """
    if not path.segments:
        return [flatten_element(el) for el in tops[:limit]]
    level = [el for el in tops if _matches(el, path.segments[0])]
    if not level:
        found = ", ".join(sorted({_local(el.tag) for el in tops if isinstance(el.tag, str)}))
        raise MalformedDocument(
            f"the answer has no <{path.segments[0]}> element (found: {found or 'nothing'})"
        )
    for name in path.segments[1:]:
        level = [c for el in level for c in _children(el, name)]
    return [flatten_element(el) for el in level[:limit]]


def value_at_xml(tops: Sequence[Any], path: RowPath) -> object:
    """The text of the first element at ``path`` (None if there is none)."""
    level = [el for el in tops if path.segments and _matches(el, path.segments[0])]
    for name in path.segments[1:]:
        level = [c for el in level for c in _children(el, name)]
    return _leaf_value(level[0]) if level else None


def value_at_json(doc: object, path: RowPath) -> object:
    rows = rows_from_json(doc, path, 1)
    return rows[0].get(".") if rows else None


def flatten_element(el: Any) -> dict[str, object]:
    out: dict[str, object] = {}
    _flatten_xml(el, "", out)
    return out


def _leaf_value(el: Any) -> object:
    if el.get(XSI_NIL) in ("true", "1"):
        return None
    return el.text if el.text is not None else ""


def _flatten_xml(el: Any, prefix: str, out: dict[str, object]) -> None:
    for name, value in el.attrib.items():
        if name != XSI_NIL:
            out[f"{prefix}@{_local(name)}"] = value
    seen: dict[str, int] = {}
    has_children = False
    for child in el:
        if not isinstance(child.tag, str):
            continue
        has_children = True
        local = _local(child.tag)
        n = seen.get(local, 0)
        seen[local] = n + 1
        key = f"{prefix}{local}" if n == 0 else f"{prefix}{local}[{n}]"
        if len(child) == 0:
            out[key] = _leaf_value(child)
            for name, value in child.attrib.items():
                if name != XSI_NIL:
                    out[f"{key}.@{_local(name)}"] = value
        else:
            _flatten_xml(child, key + ".", out)
    if not has_children and not prefix:
        out["."] = _leaf_value(el)  # a row that is itself a simple element


def rows_from_json(doc: object, path: RowPath, limit: int) -> list[dict[str, object]]:
    """Rows at ``path``; lists on the way are walked into, a missing key means no rows."""
    level: list[object] = [doc]
    for name in path.segments:
        nxt: list[object] = []
        for node in _expand(level):
            if isinstance(node, Mapping):
                if name == "*":
                    nxt.extend(node.values())
                elif name in node:
                    nxt.append(node[name])
        level = nxt
    return [flatten_json(node) for node in _expand(level) if node is not None][:limit]


def _expand(nodes: list[object]) -> Iterator[object]:
    for node in nodes:
        if isinstance(node, list):
            yield from node
        else:
            yield node


def flatten_json(node: object) -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(node, Mapping):
        _flatten_json(node, "", out)
    else:
        out["."] = node
    return out


def _flatten_json(node: Mapping[str, object], prefix: str, out: dict[str, object]) -> None:
    for name, value in node.items():
        key = f"{prefix}{name}"
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            out[key] = None
        for i, item in enumerate(items):
            at = key if i == 0 else f"{key}[{i}]"
            if isinstance(item, Mapping):
                _flatten_json(item, at + ".", out)
            else:
                out[at] = item


# --- SOAP envelopes ---------------------------------------------------------------


def find_soap_body(root: Any) -> tuple[Any, SoapFault | None]:
    """The Body of a SOAP 1.1 or 1.2 envelope and the Fault in it, if any."""
    ns = root.tag.partition("}")[0].lstrip("{") if isinstance(root.tag, str) else ""
    if _local(root.tag) != "Envelope" or ns not in (SOAP11_ENV, SOAP12_ENV):
        raise MalformedDocument(f"the answer is not a SOAP envelope (root <{_local(root.tag)}>)")
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise MalformedDocument("the SOAP envelope has no Body")
    fault = body.find(f"{{{ns}}}Fault")
    if fault is None:
        return body, None
    if ns == SOAP11_ENV:
        code = _strip_prefix(fault.findtext("faultcode") or "")
        string = fault.findtext("faultstring") or ""
    else:
        parts = [_strip_prefix(fault.findtext(f"{{{ns}}}Code/{{{ns}}}Value") or "")]
        sub = fault.find(f"{{{ns}}}Code/{{{ns}}}Subcode")
        while sub is not None:
            parts.append(_strip_prefix(sub.findtext(f"{{{ns}}}Value") or ""))
            sub = sub.find(f"{{{ns}}}Subcode")
        code = ".".join(p for p in parts if p)
        string = fault.findtext(f"{{{ns}}}Reason/{{{ns}}}Text") or ""
    return body, SoapFault(code or "Unknown", string)
