#!/usr/bin/env python3
"""lc2-gateway benchmark: floor / gateway / ceiling under the same load, one table.

    python bench/run.py --quick          # one short run of every scenario (~3 min)
    python bench/run.py                  # 3 runs x 10 s of every scenario (~20 min)
    python bench/run.py --soak           # ~1,000,000 calls, RSS sampled along the way
    python bench/run.py --profile        # py-spy profiles of the gateway under load
    python bench/run.py --patch my.diff --scenarios single
                                         # a patched gateway (the variant) beside the checkout
    python bench/run.py --pairs 8 --variant-src ../other
                                         # the two, pair by pair, order alternating
    python bench/run.py --drop           # drop the benchmark database

Needs PostgreSQL (``--pg-dsn``, a server where the user may create databases),
``wrk`` and ``nginx`` (Debian: ``apt-get install wrk nginx-light``); see
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, seed
from bench.procs import hold_interrupts, interrupts
from bench.scenarios import SCENARIOS, Sample, Scenario, by_name
from bench.suite import Options, running
from bench.targets import REPO

__all__ = ["main"]

DEFAULT_DSN = os.environ.get("LC2_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run.py", description=(__doc__ or "").split("\n\n", 1)[0]
    )
    p.add_argument("--quick", action="store_true", help="1 run, 3 s per target, 1 s warm-up")
    p.add_argument("--runs", type=int, help="runs; figures are medians (3; --quick 1)")
    p.add_argument("--duration", type=int, help="seconds of load per target (10; --quick 3)")
    p.add_argument("--warmup", type=int, help="seconds of unmeasured load first (3; --quick 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1: leaves the cores "
                   "to the servers)")
    p.add_argument("--max-requests", type=int, default=5_000_000,
                   help="count bound of each load (the time bound is --duration)")
    p.add_argument("--pool", type=int, default=8, help="database pool size, floor and gateway")
    p.add_argument("--scenarios", help=f"comma list; all: {','.join(s.name for s in SCENARIOS)}")
    p.add_argument("--patch", action="append", type=Path, default=[],
                   help="also measure a gateway with this patch applied (repeatable)")
    p.add_argument("--ref", help="measure this commit (git archive) instead of the working tree")
    p.add_argument("--variant-src", type=Path,
                   help="also measure the gateway/ and adapters/ of this directory (the variant)")
    p.add_argument("--rows", type=int, default=1_000_000, help="citizens to seed (1,000,000)")
    p.add_argument("--database", default=seed.DEFAULT_DATABASE, help="benchmark database name")
    p.add_argument("--pg-dsn", default=DEFAULT_DSN, help="PostgreSQL server (any database)")
    p.add_argument("--drop", action="store_true", help="drop the benchmark database and exit")
    p.add_argument("--drop-after", action="store_true", help="drop the database when done")
    p.add_argument("--startup-runs", type=int, help="start-up timings (5; --quick 3; 0: skip)")
    p.add_argument("--startup-services", type=int, default=50, help="services in that config")
    p.add_argument("--startup", action="store_true",
                   help="only the start-up timings and the cold burst (and the variant's)")
    p.add_argument("--soak", action="store_true", help="only the RSS soak")
    p.add_argument("--soak-requests", type=int, default=1_000_000)
    p.add_argument("--soak-minutes", type=float, default=20.0, help="time bound of the soak")
    p.add_argument("--profile", action="store_true", help="only py-spy profiles under load")
    p.add_argument("--profile-seconds", type=int, default=20)
    p.add_argument("--parts", action="store_true",
                   help="only where a call's time goes under load: Server-Timing stages and "
                        "audit batches of the gateway (and variant) under each scenario")
    p.add_argument("--pairs", type=int, metavar="N",
                   help="only the gateway against the variant, back to back, N pairs per "
                        "scenario in alternating order: each pair's ratio and their median")
    p.add_argument("--stages", action="store_true",
                   help="only CPU per pipeline stage (no HTTP), checkout vs --patch")
    p.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--json", type=Path, help="write the results here (default: results dir)")
    return p


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return "not installed"
    return (out.stdout + out.stderr).strip().splitlines()[0] if out.stdout + out.stderr else "?"


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": _version(["wrk", "--version"]),
        "nginx": _version(["nginx", "-v"]),
        "loadavg_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    # from the first line: a SIGTERM before the session or while the results are written
    # is an interrupt too (130, no traceback), not a kill
    with interrupts():
        try:
            return _main(argv)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130


def _chosen(names: str | None, default: list[str]) -> Sequence[Scenario]:
    """The scenarios named on the command line, or a mode's own default ones."""
    return by_name(names.split(",") if names else default)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    quick = args.quick
    opts = Options(
        runs=args.runs or (1 if quick else 3),
        duration=args.duration or (3 if quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        connections=args.connections,
        threads=args.threads,
        pool=args.pool,
        rows=args.rows,
        database=args.database,
        server_dsn=args.pg_dsn,
        patches=list(args.patch),
        ref=args.ref,
        variant_src=args.variant_src,
        max_requests=args.max_requests,
    )
    if args.drop:
        asyncio.run(seed.drop_database(args.pg_dsn, args.database))
        print(f"dropped database {args.database}")
        return 0
    startup_runs = args.startup_runs if args.startup_runs is not None else (3 if quick else 5)
    scenarios = by_name(args.scenarios.split(",") if args.scenarios else None)
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    commit = _git("rev-parse", "--short", args.ref or "HEAD")
    # the measured code is gateway/ and adapters/: are they what the commit holds?
    dirty = not args.ref and bool(_git("status", "--porcelain", "--", "gateway", "adapters"))
    results: dict[str, Any] = {
        "commit": commit,
        "dirty": dirty,
        "command": command,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                    if k not in ("log", "patches")} | {"patches": [str(p) for p in opts.patches]},
    }
    samples: list[Sample] = []
    text = ""
    try:
        with running(opts, drop_after=args.drop_after) as session:
            print(f"lc2-gateway benchmark  commit {commit}"
                  f"{' + uncommitted changes in gateway/ or adapters/' if dirty else ''}")
            print(f"  {command}")
            session.prepare_data()
            if args.soak:
                from bench.extras import soak

                single = by_name(["single"])[0]
                results["soak"] = soak(session, single, args.soak_requests, args.soak_minutes * 60)
                s = results["soak"]
                text = (
                    f"soak: {s['requests']:,.0f} requests in {s['seconds']:.0f} s; "
                    "RSS after warm-up "
                    f"{s['rss_after_warmup_mb']:.1f} MB, at the end {s['rss_end_mb']:.1f} MB "
                    f"(growth {s['growth_mb']:+.1f} MB, slope {s['slope_mb_per_100k']:+.2f} MB per "
                    f"100k requests), peak {s['peak_rss_mb']:.1f} MB"
                )
            elif args.startup:
                from bench.extras import measure_startup

                results["startup"] = measure_startup(
                    session, args.startup_services, max(1, startup_runs)
                )
                text = json.dumps(results["startup"], indent=1)
            elif args.stages:
                from bench.extras import render_stages, stages

                results["stages"] = stages(session)
                text = render_stages(results["stages"])
            elif args.parts:
                from bench.extras import latency_parts, render_parts_of_latency

                chosen = session.ready(_chosen(args.scenarios, ["single", "single-c1"]))
                results["parts"] = latency_parts(session, chosen, opts.duration)
                text = render_parts_of_latency(results["parts"])
            elif args.pairs:
                from bench.extras import pairs, render_pairs

                chosen = session.ready(_chosen(args.scenarios, ["single"]))
                results["pairs"] = pairs(session, chosen, args.pairs)
                text = render_pairs(results["pairs"])
            elif args.profile:
                from bench.extras import profile

                chosen = session.ready(_chosen(args.scenarios, ["single", "rows10"]))
                args.results_dir.mkdir(parents=True, exist_ok=True)
                results["profile"] = profile(
                    session, chosen, args.profile_seconds, args.results_dir, stamp
                )
            else:
                print("starting targets")
                runnable = session.ready(scenarios)
                print(f"measuring: {opts.runs} run(s) x {len(runnable)} scenario(s), "
                      f"{opts.duration} s each after {opts.warmup} s warm-up, "
                      f"{opts.connections} connections")
                samples = list(session.run(runnable))
                session.stop_targets()
                startup = None
                if startup_runs > 0:
                    from bench.extras import measure_startup

                    startup = measure_startup(session, args.startup_services, startup_runs)
                    results["startup"] = startup
                summary = report.medians(samples)
                rat = report.ratios(samples)
                comp = report.comparisons(samples)
                checks = report.target_checks(summary, rat, comp, startup, None)
                against_peer = report.peer_checks(rat, comp)
                table = report.render_table(scenarios, summary, rat, session.unavailable)
                text = "\n\n".join([
                    f"lc2-gateway {commit}{' + uncommitted changes' if dirty else ''}: {command}\n"
                    f"{opts.runs} run(s), {opts.duration} s per target, {opts.connections} "
                    f"connections, wrk {opts.threads} thread(s); {os.cpu_count()} cores shared by "
                    "wrk, PostgreSQL and the target; medians of runs, ratios per run",
                    table,
                    report.render_comparisons(comp),
                    report.render_checks(checks),
                    report.render_checks(against_peer, "targets against the hand-written peer"),
                    *(["notes:\n" + "\n".join(f"  {n}" for n in session.notes)]
                      if session.notes else []),
                ])
                results.update(
                    table=table,
                    summary=summary,
                    ratios=rat,
                    comparisons=comp,
                    targets=[c.as_dict() for c in checks],
                    peer_targets=[c.as_dict() for c in against_peer],
                    unavailable=session.unavailable,
                    notes=session.notes,
                    samples=[asdict(s) for s in samples],
                )
    except KeyboardInterrupt:
        return 130
    results["report"] = text
    results["machine"]["loadavg_end"] = os.getloadavg()
    out = args.json
    if out is None:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        out = args.results_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str),
                   encoding="utf-8")
    print("\n" + text)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    hold_interrupts()  # a late SIGTERM must not turn 130 into a kill
    code = main()
    hold_interrupts(ignore=True)  # to the end of the interpreter's teardown
    sys.exit(code)
