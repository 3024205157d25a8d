"""What the audit trail costs: gateway throughput with the audit on and off, in the same run.

Starts the real gateway application (the same Runtime, pipeline, SQLite
legacy backend, credentials, mapping, metrics) on 127.0.0.1 once per mode,
each in its own process group, and drives it from a separate client
process with the same bounded load.  Modes:

    off            the durable observer replaced by one that writes nothing
    sqlite-full    the audit as shipped: SQLite, WAL, synchronous=full, on disk
    sqlite-normal  synchronous=normal (survives a process crash, not a power cut)
    postgresql     the shared store (only with --pg-dsn)

Each round measures every mode back to back, the order rotating between
rounds; ratios are taken within a round, then the median over rounds.  Every
load stops after --requests answers or --seconds, whichever comes first;
every server is stopped by its process group id on every exit path.

    python bench/audit_cost.py [--rounds 3] [--requests 20000] [--seconds 10]
                               [--concurrency 32] [--pg-dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

__all__ = ["main"]

PASSWORD = "bench-password-123"
CITIZENS = 2000
OFFICER = "1101700203450"


def _pid(n: int) -> str:
    from gateway.transforms import check_digit

    first12 = f"3{n:011d}"
    return first12 + str(check_digit(first12))


def _legacy_db(path: Path) -> None:
    """A fisher register shaped like the legacy ones: TIS-620 bytes, BE dates."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE FISHER_REG (PID CHAR(13) PRIMARY KEY, FULLNAME VARCHAR(100), "
            "SEX CHAR(1), BIRTH_DATE CHAR(8), MOO VARCHAR(2))"
        )
        db.executemany(
            "INSERT INTO FISHER_REG VALUES (?, CAST(? AS TEXT), ?, ?, ?)",
            [
                (
                    _pid(n),
                    "นายสมชาย  ใจดี".encode("cp874"),
                    "1",
                    f"25{20 + n % 40:02d}0{1 + n % 9}15",
                    str(n % 12),
                )
                for n in range(CITIZENS)
            ],
        )


def _config(work: Path, mode: str, port: int, admin: int, pg_dsn: str | None, round_: int) -> Path:
    from gateway.auth import hash_password

    audit: dict[str, Any] = {
        "path": str(work / f"audit-{mode}-{round_}.sqlite"),  # a fresh store per measurement
        "key_file": str(work / "audit.key"),
        "seal_key_file": str(work / "audit-seal.key"),
        "synchronous": "normal" if mode == "sqlite-normal" else "full",
    }
    if mode == "postgresql":
        audit.update(
            store="postgresql",
            postgresql={"dsn": pg_dsn, "schema": f"bench_audit_{uuid.uuid4().hex[:8]}"},
        )
    output = {
        "personalId": {"column": "PID", "transform": ["pid"]},
        "firstName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "first"}]},
        "lastName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "last"}]},
        "genderDesc": {"column": "SEX", "transform": [{"lookup": "sex"}]},
        "dateOfBirth": {"column": "BIRTH_DATE", "transform": ["be_date"]},
        "villageNo": {"column": "MOO", "transform": ["trim", {"null_if": ["0"]}, "int"]},
    }
    cfg = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"enabled": True, "host": "127.0.0.1", "port": admin},
        "logging": {"level": "WARNING"},
        "consumers": {
            "lc2": {"username": "Linkage Service", "password_hash": hash_password(PASSWORD)}
        },
        "audit": audit,
        "lookups": {"sex": {"1": "ชาย", "2": "หญิง"}},
        "backends": {
            "legacy": {"type": "sqlite", "path": str(work / "legacy.sqlite"), "pool_size": 4}
        },
        "services": {
            "fisher": {
                "backend": "legacy",
                "path": "fisher",
                "params": {"personalId": {"type": "citizen_id"}},
                "operation": {
                    "query": "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG "
                    "WHERE PID = :personalId"
                },
                "output": output,
            }
        },
    }
    path = work / f"gateway-{mode}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


# -- the server (a child process) -----------------------------------------------------------


class _NoAudit:
    async def commit(self, record: object) -> None:
        return None


async def _serve(config: Path, mode: str) -> None:
    from aiohttp import web

    from gateway.app import build_admin_app, build_app
    from gateway.config.build import load_settings
    from gateway.logs import setup_logging
    from gateway.runtime import Runtime

    settings = load_settings(config)
    listener = setup_logging(settings.logging.level)
    rt = Runtime(settings)
    if mode == "off":
        rt.hub.durable = _NoAudit()  # the only difference between the modes
    runners = [
        web.AppRunner(build_app(rt), access_log=None),
        web.AppRunner(build_admin_app(rt), access_log=None),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await runners[0].setup()
        await runners[1].setup()
        await web.TCPSite(runners[0], "127.0.0.1", settings.listen.port).start()
        await web.TCPSite(runners[1], "127.0.0.1", settings.admin.port).start()
        await stop.wait()
    finally:
        for r in runners:
            await r.cleanup()
        listener.stop()


# -- the load (another child process) --------------------------------------------------------


async def _load(url: str, requests: int, seconds: float, concurrency: int) -> dict[str, Any]:
    import base64

    import aiohttp

    auth = "Basic " + base64.b64encode(f"Linkage Service:{PASSWORD}".encode()).decode()
    headers = {
        "Authorization": auth,
        "X-Office-Request": "00023",
        "X-User-Request": OFFICER,
        "User-Agent": "Linkage Center 2/1.0",
    }
    pids = [_pid(n) for n in range(CITIZENS)]
    latencies: list[float] = []
    bad = 0
    sent = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal bad, sent
        while sent < requests and time.monotonic() < deadline:
            pid = pids[sent % len(pids)]
            sent += 1
            t0 = time.perf_counter()
            async with session.get(url, params={"personalId": pid}, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    bad += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return {
        "answered": n,
        "seconds": round(elapsed, 3),
        "rps": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(latencies[n // 2] * 1000, 2) if n else None,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2) if n else None,
        "non_200": bad,
    }


# -- the harness ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _server(config: Path, mode: str, admin: int, log: Path) -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped by id, children too
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{mode} server exited: {log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1),
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{mode} server not ready in 30 s")
            time.sleep(0.1)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _drive(port: int, requests: int, seconds: float, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            f"http://127.0.0.1:{port}/api/v1/fisher",
            "--requests",
            str(requests),
            "--seconds",
            str(seconds),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _drop_schema(config: Path) -> None:
    import asyncpg

    pg = yaml.safe_load(config.read_text(encoding="utf-8"))["audit"]["postgresql"]

    async def drop() -> None:
        conn = await asyncpg.connect(pg["dsn"])
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{pg["schema"]}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def _audit_rows(config: Path, mode: str) -> int | None:
    if mode not in ("sqlite-full", "sqlite-normal"):
        return None
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    with contextlib.closing(sqlite3.connect(cfg["audit"]["path"])) as db:
        n: int = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        return n


def run(args: argparse.Namespace) -> dict[str, Any]:
    modes = ["off", "sqlite-full", "sqlite-normal"] + (["postgresql"] if args.pg_dsn else [])
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    ratios: dict[str, list[float]] = {m: [] for m in modes if m != "off"}
    with tempfile.TemporaryDirectory(prefix="lc2-audit-cost-") as tmp:
        work = Path(tmp)
        _legacy_db(work / "legacy.sqlite")
        (work / "audit.key").write_text(uuid.uuid4().hex * 2 + "\n", encoding="ascii")
        for r in range(args.rounds):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            this_round: dict[str, float] = {}
            for mode in order:
                port, admin = _free_port(), _free_port()
                config = _config(work, mode, port, admin, args.pg_dsn, r)
                with _server(config, mode, admin, work / f"{mode}.log") as pid:
                    _drive(port, args.warmup, 30, args.concurrency)
                    cpu0 = _cpu_seconds(pid)
                    res = _drive(port, args.requests, args.seconds, args.concurrency)
                    cpu = _cpu_seconds(pid) - cpu0
                res["cpu_ms_per_req"] = round(cpu * 1000 / max(res["answered"], 1), 3)
                if mode == "postgresql":
                    _drop_schema(config)  # the benchmark leaves nothing behind
                rows = _audit_rows(config, mode)
                res["audit_rows"] = rows
                if rows is not None:
                    assert rows >= res["answered"], "answered calls without an audit record"
                results[mode].append(res)
                this_round[mode] = res["rps"]
                print(f"round {r + 1} {mode:14} {res['rps']:>9.1f} req/s", file=sys.stderr)
            for mode in ratios:
                ratios[mode].append(this_round[mode] / this_round["off"])
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "rounds": args.rounds,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "results": results,
        "ratio_vs_off": {m: round(statistics.median(v), 3) for m, v in ratios.items()},
    }


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"{'mode':14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10} "
        f"{'answered':>9} {'non-200':>8} {'audit rows':>10} {'vs off':>7}"
    ]
    for mode, runs in summary["results"].items():

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r[key] for r in runs))

        rows = runs[-1]["audit_rows"]
        ratio = summary["ratio_vs_off"].get(mode)
        lines.append(
            f"{mode:14} {med('rps'):>9.1f} {med('p50_ms'):>8.2f} {med('p99_ms'):>8.2f} "
            f"{med('cpu_ms_per_req'):>10.3f} "
            f"{int(med('answered')):>9} {int(med('non_200')):>8} "
            f"{'-' if rows is None else rows:>10} {'-' if ratio is None else f'{ratio:.3f}':>7}"
        )
    full = summary["ratio_vs_off"].get("sqlite-full")
    if full is not None:
        lines.append(
            f"\naudit as shipped (sqlite, synchronous=full): {full:.2f} of the throughput "
            f"without audit (median of {summary['rounds']} same-run ratios)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20_000, help="per measurement, at most")
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement, at most")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--pg-dsn", help="also measure the PostgreSQL store (a database to use)")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--load", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        import uvloop

        uvloop.run(_serve(Path(args.config), args.serve))
        return 0
    if args.load:
        res = asyncio.run(_load(args.load, args.requests, args.seconds, args.concurrency))
        print(json.dumps(res))
        return 0
    summary = run(args)
    print(render(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
