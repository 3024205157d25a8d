"""``--fail-over 'nulls.dateOfBirth>5%,failures>0.1%'``: limits a profile must stay under.

A rule is METRIC[.FIELD]>N% (a share of the rows) or METRIC[.FIELD]>N (a count).
Without a field it counts rows with at least one such finding; ``unclean`` is
rows that do not map clean, ``several_spellings`` and ``duplicates`` count
citizens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.profile.report import METRICS

__all__ = ["Rule", "broken", "parse_rules"]

_RULE = re.compile(r"\s*([a-z_]+)(?:\.([\w.]+))?\s*>\s*([0-9]*\.?[0-9]+)\s*(%?)\s*")
_TOTALS = frozenset({*METRICS, "unclean", "several_spellings", "duplicates"}) - {"nulls"}


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    metric: str
    field: str | None
    limit: float
    share: bool


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _RULE.fullmatch(part)
        if m is None:
            raise ValueError(f"{part!r}: write METRIC[.FIELD]>N or >N%")
        metric, fld, limit, pct = m.groups()
        known = METRICS if fld else _TOTALS
        if metric not in known:
            raise ValueError(
                f"{part!r}: unknown metric {metric}; one of {', '.join(sorted(known))}"
            )
        rules.append(Rule(part, metric, fld, float(limit), pct == "%"))
    return rules


def _measure(rule: Rule, d: dict[str, Any]) -> tuple[float, int]:
    """(count, out of) for one rule."""
    if rule.field is not None:
        f = d["fields"].get(rule.field)
        if f is None:
            raise ValueError(f"{rule.text!r}: the service has no field {rule.field}")
        return f[rule.metric], f["rows"]
    c = d["citizens"]
    if rule.metric == "unclean":
        return d["rows"] - d["clean_rows"], d["rows"]
    if rule.metric == "several_spellings":
        return c["several_spellings"], c["distinct"]
    if rule.metric == "duplicates":
        return c["with_several_rows"], c["distinct"]
    return d["rows_with"][rule.metric], d["rows"]


def broken(rules: list[Rule], d: dict[str, Any]) -> list[str]:
    """Each rule the profile goes over, with what was measured."""
    out = []
    for rule in rules:
        count, whole = _measure(rule, d)
        value = 100.0 * count / whole if rule.share and whole else count
        if value > rule.limit:
            shown = f"{value:.3g}%" if rule.share else f"{count:g}"
            out.append(f"{rule.text}: measured {shown} ({count:g} of {whole})")
    return out
