#!/usr/bin/env python3
"""Instructions a call costs, counted by callgrind: a measure that does not drift.

The shared machines' speed drifts by a third within minutes, so a change worth a few per
cent of a call can not be seen in req/s.  ``valgrind --tool=callgrind`` counts the
instructions each thread runs, the same count for the same code and input whatever the
machine is doing.  Each tree's gateway runs under callgrind with the benchmark's config
(single-row PID lookups in PostgreSQL, the audit on); after a warm-up, instrumentation is
switched on for ``--calls`` calls made one after another, then the counts are dumped per
thread.

    python bench/instructions.py                        # the working tree
    python bench/instructions.py --variant-src ../other # and another checkout, same table
    python bench/instructions.py --ref HEAD --variant-src .

Calls come one at a time, so this counts a call's own work, not what concurrency adds
(collections, the writer's GIL waits): ``run.py --pairs`` measures that.  Needs valgrind
(``apt-get install valgrind``) and the benchmark database (``run.py`` seeds it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import free_port, wait_http
from bench.suite import LC2_HEADERS, Options, Session, running
from bench.targets import gateway_env, write_config

__all__ = ["count", "main"]

_PATH = "/api/v1/fisher?personalId="


def _calls(port: int, pids: list[str], n: int, seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(n):
            conn.request("GET", _PATH + rng.choice(pids), headers=LC2_HEADERS)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"call answered {resp.status}")
    finally:
        conn.close()


def _totals(out_dir: Path) -> dict[str, int]:
    """Instructions of each thread in the dump asked for (``callgrind.out.<pid>.1-<thread>``),
    from its ``totals:`` line (``summary:`` can be wrong when counting was switched on late)."""
    found: dict[str, int] = {}
    for f in sorted(out_dir.glob("callgrind.out.*.1-*")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("totals:"):
                found[f.name] = int(line.split()[1])
    return found


def _short(where: str) -> str:
    """``/long/path/ceval.c:fn [/lib/libpython3.11.so]`` as ``fn (ceval.c, libpython3.11.so)``."""
    m = re.match(r"(?:.*/)?([^/:]+):(\S+)(?: \[(?:.*/)?([^/\]]+)\])?", where)
    return f"{m[2]} ({m[1]}, {m[3]})" if m else where


def count(
    session: Session, tree: Path, name: str, calls: int, warmup: int, annotate: float = 0.0
) -> dict[str, Any]:
    """One tree's gateway under callgrind: instructions a call, the loop thread's and all."""
    port, admin = free_port(), free_port()
    store = {"path": str(session.tmp / f"audit-cg-{name}.sqlite"), "key": "${LC2_BENCH_AUDIT_KEY}"}
    cfg = write_config(session.tmp / f"cg-{name}.yaml", session.gateway_cfg(port, admin, store))
    out_dir = session.tmp / f"callgrind-{name}"
    out_dir.mkdir()
    argv = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={out_dir}/callgrind.out.%p",
        sys.executable, "-m", "gateway", "serve", "-c", str(cfg),
    ]
    # a fixed hash seed: the same dict and set layouts, so the same instructions, each run
    env = {**gateway_env(tree), "PYTHONHASHSEED": "0"}
    # started and stopped by the session's supervisor: its own process group, stopped on
    # every exit path of the harness, its output kept for the error message
    proc = session.sup.start(f"callgrind-{name}", argv, env=env, cwd=tree)
    pid = str(proc.popen.pid)
    try:
        wait_http(proc, admin, "/ready", timeout=300, poll=0.5)
        pids = session.pid_files["hit"].read_text(encoding="ascii").split()
        _calls(port, pids, warmup, seed=1)
        for command in (["-z"], ["-i", "on"]):
            subprocess.run(["callgrind_control", *command, pid], check=True, capture_output=True)
        _calls(port, pids, calls, seed=2)
        for command in (["-i", "off"], ["-d"]):
            subprocess.run(["callgrind_control", *command, pid], check=True, capture_output=True)
    finally:
        session.sup.stop(proc, grace=120.0)  # callgrind writes its last dump on the way out
    per_thread = _totals(out_dir)
    if not per_thread:
        raise RuntimeError(f"callgrind wrote no counts in {out_dir}")
    top: list[str] = []
    loop_dump = next(iter(sorted(out_dir.glob("callgrind.out.*.1-01"))), None)
    if annotate and loop_dump is not None:
        shown = subprocess.run(
            ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(loop_dump)],
            capture_output=True, text=True, check=False,
        ).stdout
        for line in shown.splitlines():
            share = re.match(r"\s*[\d,]+ \(\s*([\d.]+)%\)\s+(\S.*)", line)
            if share and float(share[1]) >= annotate:
                top.append(f"{share[1]:>6}%  {_short(share[2])}")
    # with --separate-threads the main (loop) thread's file ends in -01
    loop = sum(v for k, v in per_thread.items() if k.endswith("-01"))
    total = sum(per_thread.values())
    return {
        "calls": calls,
        "loop_per_call": loop / calls,
        "all_per_call": total / calls,
        "threads": per_thread,
        "loop_top": top,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300, help="calls counted (300)")
    p.add_argument("--warmup", type=int, default=200, help="calls before counting (200)")
    p.add_argument("--ref", help="count this commit (git archive) instead of the working tree")
    p.add_argument("--rows", type=int, default=1_000_000, help="citizens to seed (1,000,000)")
    p.add_argument("--database", default=Options.database, help="benchmark database name")
    p.add_argument("--drop-after", action="store_true", help="drop the database when done")
    p.add_argument("--variant-src", type=Path, action="append", default=[],
                   help="also count the gateway/ and adapters/ of this directory (repeatable)")
    p.add_argument("--annotate", type=float, default=0.0, metavar="PERCENT",
                   help="also list the loop thread's functions above this share (callgrind_"
                        "annotate, self instructions)")
    p.add_argument("--json", type=Path, help="write the results here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    opts = Options(ref=args.ref, rows=args.rows, database=args.database)
    with running(opts, drop_after=args.drop_after) as session:
        session.prepare_data()
        trees = {"gateway": session.main}
        for i, src in enumerate(args.variant_src):
            name = f"variant{i + 1}" if len(args.variant_src) > 1 else "variant"
            trees[name] = session._tree(f"v{i}", [], base=src.resolve())
        for name, tree in trees.items():
            print(f"counting {name} ({tree}) under callgrind ...", flush=True)
            results[name] = count(session, tree, name, args.calls, args.warmup, args.annotate)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    base = results["gateway"]
    print(f"\ninstructions a call ({args.calls} calls one at a time, after {args.warmup})")
    print(f"  {'':<10} {'loop thread':>14} {'all threads':>14} {'loop vs gateway':>16}")
    for name, r in results.items():
        print(
            f"  {name:<10} {r['loop_per_call']:>14,.0f} {r['all_per_call']:>14,.0f} "
            f"{r['loop_per_call'] / base['loop_per_call']:>16.4f}"
        )
    for name, r in results.items():
        if r["loop_top"]:
            print(f"\n{name}, loop thread, self instructions by function:")
            print("\n".join(f"  {line}" for line in r["loop_top"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
