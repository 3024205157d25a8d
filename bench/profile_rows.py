#!/usr/bin/env python3
"""Time and peak memory of ``lc2-gateway profile --all`` over a big PostgreSQL table.

    python bench/profile_rows.py                   # 1,000,000 rows
    python bench/profile_rows.py --rows 200000 --keep

Creates a scratch database (a unique name) with a legacy-shaped table made by
``generate_series`` (citizen IDs plain and dashed with valid check digits, Thai
full names with titles, BE years in DATE columns, a province code table with a
foreign key), drafts its service with ``lc2-gateway scaffold``, then runs
``profile --all`` under ``/usr/bin/time -v`` and prints the elapsed time, the
CPU time and the peak RSS, beside a ``--sample 5000`` run for the baseline.
The database is dropped at the end, on every exit path, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import base_config  # noqa: E402

CHECK = " + ".join(f"substr(p12, {i}, 1)::int * {14 - i}" for i in range(1, 13))
TABLE = f"""
CREATE TABLE province (prov_code CHAR(2) PRIMARY KEY, prov_name VARCHAR(60));
INSERT INTO province VALUES ('10', 'กรุงเทพมหานคร'), ('20', 'ชลบุรี'), ('74', 'สมุทรสาคร'),
  ('84', 'สุราษฎร์ธานี');
CREATE TABLE person_big (pid VARCHAR(17), fullname VARCHAR(100), birth DATE, regist_date DATE,
  prov_code CHAR(2) REFERENCES province, house_no VARCHAR(10), sex CHAR(1));
INSERT INTO person_big
SELECT CASE WHEN g % 3 = 0 THEN substr(pid, 1, 1) || '-' || substr(pid, 2, 4) || '-'
              || substr(pid, 6, 5) || '-' || substr(pid, 11, 2) || '-' || substr(pid, 13, 1)
            ELSE pid END,
       (ARRAY['นาย', 'นาง', 'นางสาว'])[g % 3 + 1]
         || (ARRAY['สมชาย', 'มาลี', 'วิชัย', 'บุปผา'])[g % 4 + 1]
         || ' ' || (ARRAY['ใจดี', 'ศรีสุข', 'ทองคำ'])[g % 3 + 1],
       make_date(2490 + g % 50, g % 12 + 1, g % 28 + 1),
       make_date(2545 + g % 20, g % 12 + 1, g % 27 + 1),
       (ARRAY['10', '20', '74', '84'])[g % 4 + 1], (g % 300)::text || '/' || (g % 9 + 1)::text,
       (g % 2 + 1)::text
  FROM (SELECT g, p12 || ((11 - ({CHECK}) % 11) % 10)::text AS pid
          FROM (SELECT g, lpad((100000000000 + g::bigint * 7919)::text, 12, '0') AS p12
                  FROM generate_series(1, $ROWS) g) a) b;
CREATE INDEX ON person_big (pid);
ANALYZE person_big;
"""


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _timed(argv: list[str], env: dict[str, str]) -> dict[str, str]:
    r = subprocess.run(["/usr/bin/time", "-v", *argv], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    keys = ("Elapsed (wall clock) time", "User time", "System time", "Maximum resident set size")
    out = {}
    for line in r.stderr.splitlines():
        name, _, value = line.strip().partition(": ")
        if any(name.startswith(k) for k in keys):
            out[re.sub(r" \(.*", "", name)] = value
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg-dsn", default=os.environ.get("LC2_TEST_PG_DSN",
                    "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    name = f"lc2gw_bench_profile_{uuid.uuid4().hex[:8]}"
    base, _, _ = args.pg_dsn.rpartition("/")
    dsn = f"{base}/{name}"
    asyncio.run(_admin(args.pg_dsn, f'CREATE DATABASE "{name}"'))
    try:
        print(f"seeding {args.rows:,} rows into {name} ...", flush=True)
        asyncio.run(_admin(dsn, TABLE.replace("$ROWS", str(args.rows))))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env = {**os.environ, "AUDIT_KEY": "k" * 32, "PYTHONPATH": str(ROOT)}
            backend = {"type": "postgresql", "dsn": dsn, "query_timeout": 60}
            ping = {"backend": "legacy", "operation": {"query": "SELECT 1 AS one"},
                    "output": {"one": "one"}}  # fmt: skip
            cfg = base_config(work, {"legacy": backend}, {"placeholder": ping})
            config = work / "gw.yaml"
            cli = [sys.executable, "-m", "gateway"]
            config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
            draft = work / "draft.yaml"
            scaffold = [*cli, "scaffold", "-c", str(config), "--backend", "legacy",
                        "--table", "person_big", "-o", str(draft)]  # fmt: skip
            subprocess.run(scaffold, env=env, check=True)
            parts = yaml.safe_load(draft.read_text(encoding="utf-8"))
            cfg["lookups"].update(parts.get("lookups") or {})
            cfg["services"].update(parts["services"])
            config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
            run = [*cli, "profile", "-c", str(config), "-s", "personBig", "--format", "json",
                   "-o", str(work / "report.json")]  # fmt: skip
            for label, extra in (("--sample 5000", ["--sample", "5000"]), ("--all", ["--all"])):
                print(f"profile {label}:", _timed([*run, *extra], env), flush=True)
    finally:
        if not args.keep:
            asyncio.run(_admin(args.pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
