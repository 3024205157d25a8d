"""Sandbox data: legacy-shaped rows that never come from a backend.

LC2 tests a provider in a sandbox phase before production.  Sandbox rows are
either declared in YAML or generated (:mod:`.generate`) from the service's own
mapping, in the *legacy* shape (BE CHAR(8) dates, dashed PIDs, TIS-620 text as
a latin1 column would return it), so a sandbox answer goes through exactly the
same validation and normalisation as a real one.  Generation is seeded: the
same config always gives the same rows, which testers can rely on.

Unless the YAML says otherwise (``match``), the sandbox answers only rows whose
key column holds the service's citizen-ID parameter, as the real service does:
generated rows are all of one invented person, whose ID the registration pack's
sample request uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.adapter import Row
from gateway.config.models import FieldConfig, ParamConfig, SandboxConfig
from gateway.transforms import split_spec
from gateway.transforms.registry import Lookups

from .generate import generate_rows, leaves

__all__ = ["build_sandbox", "key_column", "sandbox_filter"]


def key_column(
    params: Mapping[str, ParamConfig], output: Mapping[str, FieldConfig]
) -> tuple[str, str] | None:
    """(citizen-ID parameter, the column holding it) of a service, if it has both: the
    output field named as the parameter, else the one field whose transforms read a PID."""
    param = next((name for name, p in params.items() if p.type == "citizen_id"), None)
    if param is None:
        return None
    fields = list(leaves(output))
    named = [f for f in fields if f.name == param]
    pids = [f for f in fields if any(split_spec(s)[0] == "pid" for s in f.specs)]
    chosen = named[0] if named else pids[0] if len(pids) == 1 else None
    return None if chosen is None else (param, chosen.column)


def build_sandbox(
    cfg: SandboxConfig,
    output: Mapping[str, FieldConfig],
    params: Mapping[str, ParamConfig],
    *,
    service: str,
    lookups: Lookups,
) -> tuple[tuple[Row, ...], dict[str, str]]:
    """(rows, match: parameter -> column) of a service's sandbox."""
    key = key_column(params, output)
    if cfg.rows is not None:
        rows: tuple[Row, ...] = tuple(dict(r) for r in cfg.rows)
    else:
        rows = generate_rows(
            output,
            count=cfg.generate,
            seed=f"{cfg.seed}:{service}",
            service=service,
            lookups=lookups,
            like=cfg.like,
            one_person=key is not None,
        )
    if cfg.match is not None:
        return rows, dict(cfg.match)
    if key is not None and all(key[1] in row for row in rows):
        return rows, {key[0]: key[1]}
    return rows, {}


def _digits(value: object) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def sandbox_filter(
    rows: Sequence[Row], match: Mapping[str, str], params: Mapping[str, object]
) -> list[Row]:
    """Rows whose ``match`` columns equal the request's parameters.

    Compared on digits when the parameter is all digits, so a dashed PID in a
    legacy-shaped sandbox row matches the plain 13 digits of the request.
    """
    if not match:
        return list(rows)
    out: list[Row] = []
    for row in rows:
        for param, column in match.items():
            want = str(params.get(param, ""))
            have = row.get(column)
            if want.replace("-", "").isdigit():
                if _digits(have) != _digits(want):
                    break
            elif str(have).strip() != want:
                break
        else:
            out.append(row)
    return out
