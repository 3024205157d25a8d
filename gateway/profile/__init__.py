"""``lc2-gateway profile``: measure the quality of a service's data before LC2 sees it.

Runs the service's real mapping over the backend's rows (a sample, or all of
them) without serving anything, and reports per output field what a call
would have made of them: nulls, transform failures with their reasons and
masked examples, invalid citizen-ID checksums, implausible dates, codes
missing from their lookup, text still looking like mojibake; per service the
share of rows that map clean.  Rows are streamed in batches, held a batch at
a time (the duplicate counts keep 8 bytes a row), each batch within the
backend's ``query_timeout``; Ctrl-C stops and prints what was read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.config.build import load_settings
from gateway.config.loader import ConfigError, load_yaml
from gateway.errors import GatewayError
from gateway.profile.report import as_dict, render
from gateway.profile.rules import broken, parse_rules
from gateway.profile.scan import ScanQueryError, ctrl_c, rows_of, scan_sql
from gateway.profile.tally import Tally, leaves_of

__all__ = ["register"]

BATCH = 5000
EXIT_INTERRUPTED = 130


def _service_query(config: Path, service: str) -> str:
    data = load_yaml(config).data
    query = data["services"][service].get("operation", {}).get("query")
    if not isinstance(query, str):
        raise ScanQueryError(f"service {service} has no SQL query: profile reads SQL backends")
    return query


async def _profile(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """(the report, the backend's error if reading stopped on one)."""
    settings = load_settings(Path(args.config), create_key_file=False)
    svc = settings.services.get(args.service)
    if svc is None:
        known = ", ".join(sorted(settings.services))
        raise LookupError(f"no service named {args.service!r} (known: {known})")
    backend = settings.backends[svc.backend]
    sql = args.query or scan_sql(_service_query(Path(args.config), svc.name), svc.params)
    tally = Tally(leaves_of(svc.mapper))
    stop = asyncio.Event()
    error: str | None = None
    progress = sys.stderr.isatty()
    adapter = backend.factory.create(backend.name, backend.options, backend.limits)
    await adapter.open()
    try:
        with ctrl_c(stop):
            limit = None if args.all else args.sample
            async for rows in rows_of(backend, adapter, sql, batch=BATCH, limit=limit, stop=stop):
                tally.add(rows)
                if progress:
                    print(f"\rprofile {svc.name}: {tally.rows:,} rows", end="", file=sys.stderr)
    except GatewayError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if progress:
            print(file=sys.stderr)
        await adapter.close()
    report = as_dict(
        tally,
        service=svc.name,
        backend=backend.name,
        interrupted=stop.is_set() or error is not None,
        whole=args.all,
    )
    return report, error


def _cmd(args: argparse.Namespace) -> int:
    try:
        rules = parse_rules(args.fail_over or "")
    except ValueError as exc:
        print(f"profile: --fail-over {exc}", file=sys.stderr)
        return 2
    try:
        report, error = asyncio.run(_profile(args))
        failed = broken(rules, report)
    except ConfigError as exc:
        for p in exc.problems:
            print(p.render(exc.source), file=sys.stderr)
        return 1
    except (LookupError, ValueError) as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 1
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if error is not None:
        print(f"profile: reading stopped: {error}", file=sys.stderr)
        return 1
    for line in failed:
        print(f"profile: over the limit: {line}", file=sys.stderr)
    if report["interrupted"]:
        return EXIT_INTERRUPTED
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("profile", help="measure the data quality of a service's rows")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("-s", "--service", required=True, help="service to profile")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--sample", type=int, default=10_000, help="rows to read (default 10000)")
    scope.add_argument("--all", action="store_true", help="read every row (streamed)")
    p.add_argument("--format", choices=["md", "html", "json"], default="md")
    p.add_argument(
        "--fail-over",
        metavar="RULES",
        help="exit 1 when over a limit: 'nulls.dateOfBirth>5%%,failures>0.1%%'",
    )
    p.add_argument(
        "--query", help="SQL reading the rows, when the service's query can not be lifted"
    )
    p.add_argument("-o", "--output", help="write the report here instead of stdout")
    p.set_defaults(func=_cmd)
