"""``lc2-gateway describe``: the LC2 registration pack, generated from the YAML.

DOPA lists a provider's service only after the department describes it:
purpose, URLs, parameters, every field returned, a sample call.  This
command writes that description from the config the gateway actually runs,
so the letter and the service can not drift apart:

    lc2-gateway describe -c gateway.yaml --base-url https://lc2.example.go.th -o pack.html
    lc2-gateway describe -c gateway.yaml -o pack.xlsx        (format from the extension)
    lc2-gateway describe -c gateway.yaml --format md -s fisher

``routes`` (:mod:`gateway.describe.routes`) and ``check --connect``
(:mod:`gateway.describe.connect`) are the other read-only commands that
describe a config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config.loader import ConfigError

if TYPE_CHECKING:
    from gateway.describe.pack import Pack

__all__ = ["FORMATS", "register", "write_pack"]

FORMATS = ("md", "html", "csv", "xlsx")


def write_pack(pack: Pack, fmt: str, out: Path | None) -> None:
    """Render ``pack`` as ``fmt`` into ``out`` (stdout when None; xlsx needs a file)."""
    if fmt == "xlsx":
        from gateway.describe.sheet import write_xlsx

        if out is None:
            raise ValueError("xlsx is a binary format: give -o FILE.xlsx")
        write_xlsx(pack, out)
        return
    if fmt == "csv":
        from gateway.describe.sheet import render_csv

        text, encoding = render_csv(pack), "utf-8-sig"  # the BOM makes Excel read Thai
    else:
        from gateway.describe.text import render_html, render_markdown

        text, encoding = (render_html(pack) if fmt == "html" else render_markdown(pack)), "utf-8"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding=encoding, newline="")


def _cmd_describe(args: argparse.Namespace) -> int:
    out = Path(args.output) if args.output else None
    fmt = args.format
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out else "md"
        fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
        if fmt not in FORMATS:
            print(f"cannot tell the format from {args.output!r}: give --format", file=sys.stderr)
            return 2
    if fmt == "xlsx" and out is None:
        print("xlsx is a binary format: give -o FILE.xlsx", file=sys.stderr)
        return 2
    from gateway.describe.pack import load_pack  # aiohttp and the pipeline: only when used

    try:
        pack = load_pack(Path(args.config), base_url=args.base_url, services=args.service or ())
    except ConfigError as exc:
        print(f"lc2-gateway: invalid config {args.config}", file=sys.stderr)
        for p in exc.problems:
            print("  " + p.render(exc.source), file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"no service named {exc.args[0]!r} in {args.config}", file=sys.stderr)
        return 1
    for warning in pack.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    write_pack(pack, fmt, out)
    if out is not None:
        print(f"wrote {out} ({fmt}, {len(pack.services)} service(s))", file=sys.stderr)
    if args.strict and pack.warnings:
        print(f"{len(pack.warnings)} warning(s) with --strict", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "describe",
        help="write the LC2 registration pack (data dictionary, URLs, samples) from the config",
        description="Write the description DOPA asks for before listing a service: per service "
        "its purpose, URLs (data, sandbox, health), parameters, every output field with type, "
        "meaning and source column, a sample request and the sandbox's answer to it, in Thai "
        "and English. The config must pass `check` (its ${VARIABLES} set). Exit 0 on success, "
        "1 for an invalid config, an unknown service or (with --strict) any warning, 2 for a "
        "usage error.",
    )
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="md (default), html, csv (UTF-8 with BOM, for Excel) or xlsx; "
        "by default taken from the -o file's extension",
    )
    p.add_argument("-o", "--output", help="file to write (default: stdout; required for xlsx)")
    p.add_argument(
        "--base-url",
        help="the address LC2 calls, e.g. https://lc2.example.go.th "
        "(default: from listen:, which is rarely the public one)",
    )
    p.add_argument(
        "-s",
        "--service",
        action="append",
        metavar="NAME",
        help="describe only this service (repeatable; default: all)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if anything is missing (a meaning, an example, a description)",
    )
    p.set_defaults(func=_cmd_describe)
