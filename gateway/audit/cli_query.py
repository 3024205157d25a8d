"""``lc2-gateway audit search | who-accessed | export`` and ``report monthly``."""

from __future__ import annotations

import argparse
import datetime as dt
import smtplib
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit.chain import Segmenter
from gateway.audit.cli_common import Fail, check_key, load, open_store, output, trusted
from gateway.audit.config import AuditSettings
from gateway.audit.record import subject_hash
from gateway.audit.store import StoreError

__all__ = ["cmd_export", "cmd_monthly", "cmd_search", "cmd_who", "filter_args"]


# -- search, who-accessed, export ----------------------------------------------------------


def filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="since", help="local date or time (YYYY-MM-DD[THH:MM])")
    p.add_argument("--to", dest="until", help="local date (inclusive) or time (exclusive)")


def _bounds(args: argparse.Namespace, tz: ZoneInfo) -> tuple[str | None, str | None]:
    from gateway.audit.search import month_bounds, parse_time

    try:
        if getattr(args, "month", None):
            first, last, _, _ = month_bounds(args.month, tz)
            return first, last
        since = parse_time(args.since, tz) if args.since else None
        until = parse_time(args.until, tz, end=True) if args.until else None
    except ValueError as exc:
        raise Fail(str(exc), 2) from None
    return since, until


def _emit(args: argparse.Namespace, audit: AuditSettings, flt: Any, columns: Any, fmt: str) -> int:
    from gateway.audit.search import rows, write_rows

    reader = open_store(audit)
    out = output(getattr(args, "output", None))
    try:
        if getattr(args, "pid", None) is not None:
            check_key(reader, audit)
        found = rows(
            reader,
            flt,
            columns,
            archive_dir=audit.archive_dir if args.include_archives else None,
            limit=getattr(args, "limit", None),
        )
        n = write_rows(out, found, columns, fmt, ZoneInfo(audit.timezone))
    except (StoreError, OSError, ValueError) as exc:
        raise Fail(str(exc)) from None
    finally:
        reader.close()
        if out is not sys.stdout:
            out.close()
    print(f"{n} record(s)", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from gateway.audit.search import SEARCH_COLUMNS, Filter

    audit: AuditSettings = load(args.config).audit
    since, until = _bounds(args, ZoneInfo(audit.timezone))
    try:
        flt = Filter(
            since=since,
            until=until,
            office=args.office,
            officer=_digits(args.officer),
            service=args.service,
            consumer=args.consumer,
            status=args.status,
            kind=args.kind,
            request_id=args.request_id,
        )
    except ValueError as exc:
        raise Fail(str(exc), 2) from None
    return _emit(args, audit, flt, SEARCH_COLUMNS, args.format)


def _digits(text: str | None) -> str | None:
    return None if text is None else "".join(ch for ch in text if ch.isdigit())


def cmd_who(args: argparse.Namespace) -> int:
    from gateway.audit.search import Filter
    from gateway.transforms import is_valid_pid

    settings = load(args.config)
    audit: AuditSettings = settings.audit
    pid = _digits(args.pid) or ""
    if not is_valid_pid(pid):
        raise Fail("not a valid 13-digit citizen ID (check digit)", 2)
    since, until = _bounds(args, ZoneInfo(audit.timezone))
    flt = Filter(
        since=since,
        until=until,
        subject_hash=subject_hash(audit.key, pid),
        in_params=args.all_params,
        include_sandbox=args.include_sandbox,
    )
    columns = (
        "ts",
        "office",
        "officer",
        "consumer",
        "service",
        "kind",
        "status",
        "code",
        "rows",
        "request_id",
    )
    if args.format == "letter":
        return _letter(args, settings, flt, columns, pid)
    return _emit(args, audit, flt, columns, args.format)


def _letter(args: argparse.Namespace, settings: Any, flt: Any, columns: Any, pid: str) -> int:
    from gateway.audit.letter import accesses, render_letter
    from gateway.audit.search import rows

    audit: AuditSettings = settings.audit
    tz = ZoneInfo(audit.timezone)
    names = {
        n: f"{s.config.description_th or s.config.description or n} ({n})"
        for n, s in settings.services.items()
    }
    reader = open_store(audit)
    try:
        check_key(reader, audit)
        archive_dir = audit.archive_dir if args.include_archives else None
        found = accesses(rows(reader, flt, columns, archive_dir=archive_dir), tz, names)
    except (StoreError, OSError, ValueError) as exc:
        raise Fail(str(exc)) from None
    finally:
        reader.close()
    period = (args.since or "…", args.until or "…") if args.since or args.until else None
    page = render_letter(
        found,
        pid=pid,
        period=period,
        department=args.department,
        today=dt.datetime.now(tz).date(),
    )
    out = output(args.output)
    try:
        out.write(page)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{len(found)} record(s) in the letter", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gateway.audit.search import Filter
    from gateway.audit.store import ALL_COLUMNS

    audit: AuditSettings = load(args.config).audit
    if not args.month and not (args.since and args.until):
        raise Fail("give --month YYYY-MM, or --from and --to", 2)
    since, until = _bounds(args, ZoneInfo(audit.timezone))
    return _emit(args, audit, Filter(since=since, until=until), ALL_COLUMNS, args.format)


# -- report monthly ----------------------------------------------------------------------------


def cmd_monthly(args: argparse.Namespace) -> int:
    from gateway.audit.report import build_monthly
    from gateway.audit.report_render import (
        anomalies_csv,
        render_html,
        render_markdown,
        usage_csv,
    )
    from gateway.audit.search import Filter, rows
    from gateway.audit.verify import verify_store

    settings = load(args.config)
    audit: AuditSettings = settings.audit
    assert audit.report is not None
    if args.month == "previous":  # what a timer on the 1st asks for, in the audit's zone
        today = dt.datetime.now(ZoneInfo(audit.timezone)).date()
        args.month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    mail_to = [a for a in args.mail_to or [] if a]
    if mail_to and not args.out_dir:
        raise Fail("--mail-to needs --out-dir: the files written are the ones sent", 2)
    reader = open_store(audit)
    try:

        def source(flt: Filter, columns: tuple[str, ...]) -> Iterable[Mapping[str, Any]]:
            archive_dir = audit.archive_dir if args.include_archives else None
            return rows(reader, flt, columns, archive_dir=archive_dir)

        try:
            report = build_monthly(
                source, args.month, audit.report, audit.timezone, settings.consumers
            )
        except ValueError as exc:
            raise Fail(str(exc), 2) from None
        if not args.no_verify:
            result = verify_store(
                reader,
                trusted=trusted(audit, []),
                segmenter=Segmenter(audit.seal_period, audit.timezone),
                now=time.time(),
                grace=audit.seal_grace,
            )
            verdict = {0: "intact and sealed", 1: "PROBLEMS FOUND", 3: "intact, not all sealed"}
            report.integrity.append(
                f"Audit trail verification when generated: {verdict[result.exit_code]} "
                f"({len(result.errors)} problem(s); details: `lc2-gateway audit verify`)"
            )
    except StoreError as exc:
        raise Fail(str(exc)) from None
    finally:
        reader.close()
    renders = {
        "md": render_markdown,
        "html": render_html,
        "csv": usage_csv,
        "anomalies-csv": anomalies_csv,
    }
    if args.out_dir:
        d = Path(args.out_dir)
        d.mkdir(parents=True, exist_ok=True)
        names = {"md": "md", "html": "html", "csv": "usage.csv", "anomalies-csv": "anomalies.csv"}
        written = [d / f"report-{args.month}.{ext}" for ext in names.values()]
        for fmt, path in zip(names, written, strict=True):
            path.write_text(renders[fmt](report), encoding="utf-8")
        print(f"wrote {len(names)} files to {d}", file=sys.stderr)
        if mail_to:
            from gateway.audit.report_mail import send_report

            try:
                send_report(
                    written, month=args.month, to=mail_to, sender=args.mail_from, smtp=args.smtp
                )
            except (OSError, smtplib.SMTPException) as exc:
                raise Fail(f"the report is in {d}, but mailing it failed: {exc}") from None
            print(f"mailed to {', '.join(mail_to)} through {args.smtp}", file=sys.stderr)
    else:
        out = output(args.output)
        try:
            out.write(renders[args.format](report))
        finally:
            if out is not sys.stdout:
                out.close()
    print(f"{len(report.anomalies)} anomalies to review", file=sys.stderr)
    return 0
