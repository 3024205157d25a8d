"""``lc2-gateway check``: every problem of a config file in one run.

The config's own problems (schema, references, transforms, grants), and with
``--connect`` what only the real backends can tell (a backend that does not
open or answer, an output column the query or the WSDL does not return),
each with its YAML line.  Problems go to stderr, one per line; ``--json``
prints one document on stdout instead, for scripts and CI.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from gateway.config.build import build_settings
from gateway.config.loader import ConfigError, LoadedYaml, Problem, load_yaml
from gateway.config.runtime import Settings

__all__ = ["load_checked", "run_check"]


def _problem(p: Problem) -> dict[str, Any]:
    return {"path": ".".join(map(str, p.path)), "line": p.line, "message": p.message}


def load_checked(config: str) -> Settings | None:
    """The settings of a file that passes ``check``, or None with its problems on stderr."""
    try:
        return build_settings(load_yaml(Path(config)), create_key_file=False)
    except ConfigError as exc:
        for p in exc.problems:
            print(p.render(exc.source or config), file=sys.stderr)
        print(f"{config}: {len(exc.problems)} problem(s) found", file=sys.stderr)
        return None


def run_check(config: str, *, connect: bool, as_json: bool) -> int:
    source = config
    problems: list[Problem] = []
    settings: Settings | None = None
    loaded: LoadedYaml | None = None
    try:
        loaded = load_yaml(Path(config))
        settings = build_settings(loaded, create_key_file=False)
    except ConfigError as exc:
        problems, source = list(exc.problems), exc.source or config
    backends: list[dict[str, Any]] = []
    if settings is not None and loaded is not None and connect:
        from gateway.describe.connect import check_backends

        for c in asyncio.run(check_backends(settings, loaded.line_of)):
            backends.append(
                {
                    "name": c.name,
                    "type": c.type,
                    "ok": c.ok,
                    "ms": round(c.seconds * 1000),
                    "described": c.described,
                }
                | ({"error": c.error} if c.error else {})
            )
            if not c.ok:
                at = ("backends", c.name)
                problems.append(Problem(at, loaded.line_of(at), f"{c.error}"))
            problems.extend(c.problems)
    problems.sort(key=lambda p: (p.line or 0, p.path))
    if as_json:
        doc: dict[str, Any] = {
            "config": config,
            "ok": not problems,
            "version": settings.version if settings is not None else None,
            "problems": [_problem(p) for p in problems],
        }
        if settings is not None:
            doc["services"] = {
                name: {"data": s.data_path, "sandbox": s.sandbox_path, "health": s.health_path}
                for name, s in sorted(settings.services.items())
            }
        if connect:
            doc["backends"] = backends
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 1 if problems else 0
    if settings is not None:
        print(f"{config}: config version {settings.version}")
        for name, svc in sorted(settings.services.items()):
            print(
                f"  {name}: GET {svc.data_path}  sandbox {svc.sandbox_path}  "
                f"health {svc.health_path}"
            )
        if backends:
            print("backends:")
        for b in backends:
            if b["ok"]:
                checked = f"; output columns of {b['described']} service(s) compared"
                print(
                    f"  {b['name']} ({b['type']}): OK, open and probe in {b['ms']} ms"
                    + (checked if b["described"] else "")
                )
    for p in problems:
        print(p.render(source), file=sys.stderr)
    if problems:
        print(f"{config}: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{config}: OK")
    return 0
