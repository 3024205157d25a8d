"""``lc2-gateway audit ...`` and ``lc2-gateway report monthly``.

These commands run beside the gateway (or on a copy of the store), read the
same config to find the store and the keys, and never need the gateway to be
running.  They are synchronous: the command line is not the request path.

Exit codes: 0 success; 1 the store or the input said no (for ``verify``: a
problem was found); 2 usage or a setting the command needs is missing; 3
(``verify`` only) nothing wrong found but a closed segment is not sealed yet.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from gateway.audit import keys
from gateway.audit.chain import Segmenter
from gateway.audit.cli_common import Fail, load, open_store, run, trusted
from gateway.audit.cli_query import cmd_export, cmd_monthly, cmd_search, cmd_who, filter_args
from gateway.audit.config import AuditSettings
from gateway.audit.store import StoreError
from gateway.observe import Kind

__all__ = ["register"]


# -- verify, seal, archive, pubkey -----------------------------------------------------


def _cmd_verify(args: argparse.Namespace) -> int:
    if not args.textfile:
        return _verify(args)
    from gateway.audit.verify_metrics import write_textfile

    try:
        code = _verify(args)
    except Fail:
        write_textfile(Path(args.textfile), exit_code=1)
        raise
    write_textfile(Path(args.textfile), exit_code=code)
    return code


def _verify(args: argparse.Namespace) -> int:
    from gateway.audit.retention import check_archive
    from gateway.audit.verify import Finding, verify_store

    audit = load(args.config).audit if args.config else None
    keyring = trusted(audit, args.public_key or [])
    if not keyring:
        raise Fail("no public key: give -c CONFIG or --public-key FILE", 2)
    if args.archive:
        findings = check_archive(Path(args.archive), keyring)
        return _report_findings(findings, {}, args, exit_code=1 if findings else 0)
    if audit is None and not args.sqlite:
        raise Fail("give -c CONFIG, --sqlite FILE or --archive FILE", 2)
    if args.sqlite:
        from gateway.audit.store_sqlite import SqliteStore

        try:
            reader: Any = SqliteStore.open(Path(args.sqlite))
        except StoreError as exc:
            raise Fail(str(exc)) from None
    else:
        assert audit is not None
        reader = open_store(audit)
    period = audit.seal_period if audit else "day"
    tz = audit.timezone if audit else args.timezone
    grace = audit.seal_grace if audit else 600.0
    archive_dir = audit.archive_dir if audit else None
    if args.archive_dir:
        archive_dir = Path(args.archive_dir)

    def archived(seal: Any) -> list[Finding]:
        assert archive_dir is not None and seal.archive is not None
        return check_archive(archive_dir / seal.archive, keyring, expected=seal)

    try:
        result = verify_store(
            reader,
            trusted=keyring,
            segmenter=Segmenter(period, tz),
            now=time.time(),
            grace=grace,
            archive_check=None if args.no_archives or archive_dir is None else archived,
            chains=args.chain or None,
        )
    except StoreError as exc:
        raise Fail(str(exc)) from None
    finally:
        reader.close()
    return _report_findings(result.findings, result.chains, args, exit_code=result.exit_code)


def _report_findings(
    findings: list[Any],
    chains: Mapping[str, Mapping[str, int]],
    args: argparse.Namespace,
    *,
    exit_code: int,
) -> int:
    if args.json:
        found = [f.as_dict() for f in findings]
        body = {"exitCode": exit_code, "chains": chains, "findings": found}
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return exit_code
    for name, st in chains.items():
        print(
            f"chain {name}: {st['records']} records in {st['segments']} segments "
            f"({st['sealed']} sealed, {st['archived']} archived)"
        )
    shown = [f for f in findings if args.verbose or f.severity != "info"]
    for f in shown:
        print(f.render())
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if exit_code == 0:
        print("verify: OK: every record is in place, unaltered, and every closed segment sealed")
    elif exit_code == 3:
        print(f"verify: no tampering found, but {warnings} warning(s): not everything is sealed")
    else:
        print(f"verify: FAILED: {errors} problem(s), {warnings} warning(s)")
    return exit_code


def _cmd_seal(args: argparse.Namespace) -> int:
    from gateway.audit.sealer import seal_due

    audit: AuditSettings = load(args.config).audit
    if audit.seal_seed is None:
        raise Fail(
            f"no seal key at {audit.seal_key_path}: start the gateway once, or set "
            "audit.seal_key_file",
            2,
        )
    store = open_store(audit)
    try:
        run = seal_due(
            store,
            seed=audit.seal_seed,
            segmenter=Segmenter(audit.seal_period, audit.timezone),
            grace=audit.seal_grace,
            include_open=args.include_open,
            chains=args.chain or None,
        )
    except StoreError as exc:
        raise Fail(str(exc)) from None
    finally:
        store.close()
    for s in run.sealed:
        print(
            f"sealed chain {s.chain} segment {s.segment}: seq {s.first_seq}..{s.last_seq} "
            f"({s.count} records) seal {s.seal_hash[:16]}"
        )
    for f in run.problems:
        print(f.render())
    if not run.sealed and not run.problems:
        print("nothing to seal")
    return 1 if run.problems else 0


def _cmd_archive(args: argparse.Namespace) -> int:
    from gateway.audit.retention import archive_due

    audit: AuditSettings = load(args.config).audit
    keep = args.keep_days or audit.keep_days
    if keep is None:
        raise Fail("set audit.retention.keep_days or pass --keep-days", 2)
    keyring = trusted(audit, [])
    archive_dir = Path(args.archive_dir) if args.archive_dir else audit.archive_dir
    store = open_store(audit)
    try:
        run = archive_due(
            store,
            archive_dir=archive_dir,
            keep_days=keep,
            trusted=keyring,
            dry_run=args.dry_run,
            purge=not args.no_purge,
        )
    except StoreError as exc:
        raise Fail(str(exc)) from None
    finally:
        store.close()
    for s in run.planned:
        print(f"would archive chain {s.chain} segment {s.segment} ({s.count} records)")
    for s in run.archived:
        print(
            f"archived chain {s.chain} segment {s.segment} ({s.count} records) to "
            f"{archive_dir / s.chain / (s.segment + '.jsonl.gz')}"
        )
    if run.purged:
        print(f"purged {run.purged} records from the store")
    for f in run.problems:
        print(f.render())
    if run.problems:
        print("archive: stopped at a segment that fails verification; nothing of it was removed")
    return 1 if run.problems else 0


def _cmd_pubkey(args: argparse.Namespace) -> int:
    audit: AuditSettings = load(args.config).audit
    if audit.seal_seed is None:
        raise Fail(f"no seal key at {audit.seal_key_path}", 2)
    public = keys.public_from_seed(audit.seal_seed)
    print(f"# audit seal key {keys.key_id(public)} (chain {audit.instance})")
    print(keys.public_pem(public), end="")
    return 0


# -- registration ------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add ``audit`` and ``report`` to the top-level subparsers of ``lc2-gateway``."""
    audit = sub.add_parser("audit", help="verify, seal, search and export the audit trail")
    cmds = audit.add_subparsers(dest="audit_command", required=True)

    p = cmds.add_parser("verify", help="check the whole trail; exit 0 intact, 1 tampered")
    p.add_argument("-c", "--config", help="YAML config (finds the store and the keys)")
    p.add_argument("--sqlite", help="an SQLite store file (a copy), instead of -c")
    p.add_argument("--archive", help="check one archive file (with --public-key)")
    p.add_argument("--archive-dir", help="where archives are (default: from the config)")
    p.add_argument("--public-key", action="append", help="a trusted public key (PEM); repeat")
    p.add_argument("--chain", action="append", help="only this chain; repeat")
    p.add_argument("--no-archives", action="store_true", help="do not open archive files")
    p.add_argument("--timezone", default="Asia/Bangkok", help="without -c: the audit's zone")
    p.add_argument("--json", action="store_true", help="findings as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="also show open segments")
    p.add_argument(
        "--textfile",
        help="also write the outcome for the node exporter's textfile collector (a .prom file)",
    )
    p.set_defaults(func=run(_cmd_verify))

    p = cmds.add_parser("seal", help="seal closed segments now (the gateway does it by itself)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--include-open", action="store_true", help="also seal the open segment")
    p.add_argument("--chain", action="append", help="only this chain; repeat")
    p.set_defaults(func=run(_cmd_seal))

    p = cmds.add_parser("search", help="find records by time, office, officer, service, status")
    p.add_argument("-c", "--config", required=True)
    filter_args(p)
    p.add_argument("--office")
    p.add_argument("--officer", help="the officer's citizen ID")
    p.add_argument("--service")
    p.add_argument("--consumer")
    p.add_argument("--status", help="200, 403 ... or ok, error, 4xx, 5xx")
    p.add_argument("--kind", choices=get_args(Kind))
    p.add_argument("--request-id")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")
    p.add_argument("--include-archives", action="store_true")
    p.add_argument("-o", "--output", help="file (default: standard output)")
    p.set_defaults(func=run(cmd_search))

    p = cmds.add_parser("who-accessed", help="which office and officer looked up a citizen")
    p.add_argument("pid", help="the citizen's 13-digit ID (hashed here, never stored)")
    p.add_argument("-c", "--config", required=True)
    filter_args(p)
    p.add_argument("--include-sandbox", action="store_true", help="also sandbox calls")
    p.add_argument("--all-params", action="store_true", help="also other hashed parameters")
    p.add_argument(
        "--format",
        choices=["table", "csv", "jsonl", "letter"],
        default="table",
        help="letter: the bilingual A4 letter (HTML) for the citizen who asked",
    )
    p.add_argument("--department", help="the department's name on the letter")
    p.add_argument("--include-archives", action="store_true")
    p.add_argument("-o", "--output")
    p.set_defaults(func=run(cmd_who))

    p = cmds.add_parser("export", help="every record of a period, as CSV or JSON Lines")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--month", help="YYYY-MM")
    filter_args(p)
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--include-archives", action="store_true")
    p.add_argument("-o", "--output")
    p.set_defaults(func=run(cmd_export))

    p = cmds.add_parser("archive", help="archive and purge sealed segments past retention")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--keep-days", type=int, help="override audit.retention.keep_days")
    p.add_argument("--archive-dir", help="override audit.retention.archive_dir")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--no-purge", action="store_true", help="archive only, keep the records")
    p.set_defaults(func=run(_cmd_archive))

    p = cmds.add_parser("pubkey", help="print the seal public key to give to auditors")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=run(_cmd_pubkey))

    report = sub.add_parser("report", help="usage reports from the audit trail")
    rcmds = report.add_subparsers(dest="report_command", required=True)
    p = rcmds.add_parser("monthly", help="per office, officer, service; anomalies to review")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM, or 'previous' (the month before this)")
    p.add_argument("--format", choices=["md", "html", "csv", "anomalies-csv"], default="md")
    p.add_argument("-o", "--output", help="file (default: standard output)")
    p.add_argument("--out-dir", help="write all four forms into this directory")
    p.add_argument("--include-archives", action="store_true")
    p.add_argument("--no-verify", action="store_true", help="skip the integrity check")
    p.add_argument(
        "--mail-to",
        action="append",
        default=[a.strip() for a in os.environ.get("LC2_REPORT_MAIL_TO", "").split(",")],
        help="also mail the --out-dir files to this address (repeat; default "
        "$LC2_REPORT_MAIL_TO, comma-separated)",
    )
    p.add_argument("--mail-from", help="sender address (default lc2-gateway@this host)")
    p.add_argument("--smtp", default="localhost:25", help="the local mail system (HOST:PORT)")
    p.set_defaults(func=run(cmd_monthly))
