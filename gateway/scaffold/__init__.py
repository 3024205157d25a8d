"""``lc2-gateway scaffold``: draft a service from a legacy table.

Connects to one backend of a config through its own adapter (read-only),
reads the table's columns, foreign keys and a bounded sample, and prints a
commented service that passes ``check``: the citizen-ID key and the
spellings it holds, the transforms each column's values call for with the
evidence, code columns joined to their code table or given a lookup stub,
DOPA names where a column's meaning is recognised.  It never writes to the
backend and prints no sampled value except the codes of code columns.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.adapter import PrepareError
from gateway.config.build import load_settings
from gateway.config.loader import ConfigError
from gateway.errors import GatewayError
from gateway.scaffold.draft import make_draft
from gateway.scaffold.render import render, service_name
from gateway.scaffold.soap import soap_draft

__all__ = ["register"]

_SQL_TYPES = frozenset({"postgresql", "mysql", "sqlite", "odbc"})


async def _draft(args: argparse.Namespace) -> str:
    settings = load_settings(Path(args.config), create_key_file=False)
    backend = settings.backends.get(args.backend)
    if backend is None:
        raise LookupError(
            f"no backend named {args.backend!r} (known: {', '.join(sorted(settings.backends))})"
        )
    service = args.service or service_name(args.table or args.operation or "service")
    if args.operation is not None:
        if backend.type != "soap":
            raise LookupError(f"backend {args.backend} is {backend.type}: --operation is for soap")
        draft = soap_draft(
            backend, service=service, operation=args.operation, answer=Path(args.answer),
            key=args.key,
        )  # fmt: skip
        return render(draft, path=args.path)
    if backend.type not in _SQL_TYPES:
        raise LookupError(
            f"backend {args.backend} is {backend.type}: scaffold reads SQL and SOAP backends"
        )
    adapter = backend.factory.create(backend.name, backend.options, backend.limits)
    await adapter.open()
    try:
        draft = await make_draft(
            backend,
            adapter,
            service=service,
            table=args.table,
            query=args.query,
            key=args.key,
            sample=args.sample,
        )
    finally:
        await adapter.close()
    return render(draft, path=args.path)


def _cmd(args: argparse.Namespace) -> int:
    sources = [a for a in (args.table, args.query, args.operation) if a is not None]
    if len(sources) != 1 or (args.operation is None) != (args.answer is None):
        print(
            "give --table TABLE, --query SQL, or --operation NAME with --answer FILE",
            file=sys.stderr,
        )
        return 2
    try:
        text = asyncio.run(_draft(args))
    except ConfigError as exc:
        for p in exc.problems:
            print(p.render(exc.source), file=sys.stderr)
        return 1
    except (LookupError, ValueError, GatewayError, PrepareError) as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scaffold", help="draft a service from a legacy table or SOAP operation (read-only)"
    )
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("--backend", required=True, help="backend to read")
    p.add_argument("--table", help="table (or view) to publish")
    p.add_argument("--query", help="SQL of a join or view instead of --table")
    p.add_argument("--operation", help="SOAP operation (a soap backend), with --answer")
    p.add_argument("--answer", help="a saved sample answer of the operation (XML)")
    p.add_argument("--key", help="citizen-ID column (default: found by name and checksum)")
    p.add_argument("--sample", type=int, default=200, help="rows to sample (default 200)")
    p.add_argument("--service", help="service name (default: the table's name in camelCase)")
    p.add_argument("--path", help="URL path segment (default: the service name)")
    p.add_argument("-o", "--output", help="write the draft here instead of stdout")
    p.set_defaults(func=_cmd)
