"""A draft service from a SOAP operation: its request from the WSDL, its rows from one
sample answer the operator saved (SoapUI, or the vendor's documentation).

No call is made: asking a vendor's system for a sample means sending it a real
citizen's ID, which is the operator's decision, not the tool's.  The rows are
found by walking down from the SOAP Body through wrapper elements (one child
kind each) to the element that repeats or that holds several fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from adapters._xml import MalformedDocument, RowPath, find_soap_body, parse_xml, rows_from_xml
from adapters.soap import SoapFactory
from gateway.config.runtime import Backend
from gateway.scaffold.draft import Draft, add_fields, pick_key
from gateway.scaffold.evidence import examine

__all__ = ["soap_draft"]

_KEY_ELEMENT = re.compile(r"(pid|citizen|personal|owner_?id|id_?card|^id$)", re.I)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def rows_path(body: Any) -> str:
    """The path below the Body to the repeated row element."""
    path: list[str] = []
    el = body
    while True:
        kids = [k for k in el if isinstance(k.tag, str)]
        tags = {_local(k.tag) for k in kids}
        if len(tags) != 1 or not any(isinstance(g.tag, str) for g in kids[0]):
            break
        path.append(tags.pop())
        if len(kids) > 1:
            break  # the rows repeat here
        el = kids[0]
    if not path:
        raise ValueError("the sample answer holds no element with fields below the SOAP Body")
    return "/".join(path)


def _key_element(elements: list[str]) -> str | None:
    if len(elements) == 1:
        return elements[0]
    return next((e for e in elements if _KEY_ELEMENT.search(e)), elements[0] if elements else None)


def soap_draft(
    backend: Backend, *, service: str, operation: str, answer: Path, key: str | None
) -> Draft:
    factory = backend.factory
    if not isinstance(factory, SoapFactory):
        raise LookupError(f"backend {backend.name} is not a soap backend")
    elements = factory.request_elements(backend.options, operation)
    try:
        body, fault = find_soap_body(parse_xml(answer.read_bytes()))
    except (OSError, MalformedDocument, ValueError) as exc:
        raise ValueError(f"the sample answer {answer}: {exc}") from None
    if fault is not None:
        raise ValueError("the sample answer is a SOAP Fault: save an answer with records")
    path = rows_path(body)
    rows = rows_from_xml(list(body), RowPath.parse(path), 1000)
    columns = list(dict.fromkeys(c for r in rows for c in r))
    evidence = [examine(c, [r.get(c) for r in rows]) for c in columns]
    draft = Draft(service, backend.name, operation, False, len(rows), columns, None)
    draft.soap = (_key_element(elements), path)
    draft.key, draft.key_why = pick_key(evidence, key)
    if draft.key is None:
        draft.notes.append("no element of citizen IDs found: give the key with --key COLUMN")
    taken: set[str] = set()
    for ev in evidence:
        add_fields(draft, ev, None, taken)
    return draft
