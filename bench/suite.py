"""One benchmark session: data, targets, preflight checks, and the measured runs.

Every target of a scenario is measured back to back in the same run (their
order rotates from run to run), so the ratios compare figures taken seconds
apart on the same noisy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import seed
from bench.load import Load, WrkResult, run_wrk, start_wrk, stop_loads, write_script
from bench.procs import (
    Supervisor,
    cpu_seconds,
    free_port,
    http_get,
    interrupts,
    peak_rss_mb,
    reset_peak,
    shielded,
)
from bench.scenarios import Sample, Scenario
from bench.targets import (
    REPO,
    Instance,
    build_tree,
    export_ref,
    start_floor,
    start_gateway,
    start_nginx,
    supports_workers,
    write_config,
)
from bench.workload import OFFICE, OFFICER, PASSWORD, authorization, gateway_config

__all__ = [
    "Options",
    "Session",
    "machine_busy_since",
    "machine_ticks",
    "password_hash",
    "running",
]

LC2_HEADERS = {
    "Authorization": authorization(),
    "X-Office-Request": OFFICE,
    "X-User-Request": OFFICER,
    "User-Agent": "Linkage Center 2/bench",
}


@dataclass
class Options:
    runs: int = 3
    duration: int = 10
    warmup: int = 3
    connections: int = 32
    threads: int = 1
    pool: int = 8
    rows: int = 1_000_000
    database: str = seed.DEFAULT_DATABASE
    server_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    patches: list[Path] = field(default_factory=list)
    ref: str | None = None  # measure this commit instead of the working tree
    variant_src: Path | None = None  # the variant's gateway/ and adapters/ come from here
    max_requests: int = 5_000_000  # per load: the count bound (the time bound is duration)
    log: Callable[[str], None] = print


def password_hash(password: str) -> str:
    from gateway.auth import hash_password  # the format `lc2-gateway passwd` prints

    return hash_password(password)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def machine_busy_since(start: tuple[int, int]) -> float:
    busy, total = machine_ticks()
    return (busy - start[0]) / max(1, total - start[1])


class Session:
    """Owns every process, file and directory it makes; ``close`` removes them."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.log = opts.log
        self.tmp = Path(tempfile.mkdtemp(prefix="lc2-bench-"))
        shm = Path("/dev/shm")
        self.shm = Path(tempfile.mkdtemp(prefix="lc2-bench-", dir=shm if shm.is_dir() else None))
        self.sup = Supervisor(self.tmp)
        self.static = self.tmp / "static"
        self.static.mkdir()
        self.script = write_script(self.tmp)
        self.instances: dict[str, Instance] = {}
        self.unavailable: dict[str, str] = {}  # scenario -> why it can not run here
        self.notes: list[str] = []
        self.pid_files: dict[str, Path] = {}
        self.dataset = seed.Dataset.for_rows(opts.rows)
        self.pg_dsn = ""
        self.sqlite_path = self.tmp / "demo-fisheries.sqlite"
        self.hash = ""
        self.main = export_ref(opts.ref, self.tmp / "tree-ref") if opts.ref else REPO
        self.trees: dict[str, Path] = {"main": self.main}

    # -- set-up ------------------------------------------------------------------

    def prepare_data(self) -> None:
        opts = self.opts
        dsn, seeded = asyncio.run(
            seed.ensure_seeded(opts.server_dsn, opts.database, self.dataset, self.log)
        )
        self.pg_dsn = dsn
        self.log(
            f"database {opts.database}: {'seeded now' if seeded else 'reused (fingerprint ok)'}"
        )
        ds = self.dataset
        self.pid_files = {
            "hit": seed.write_pid_file(self.tmp / "hit.txt", seed.hit_pids(ds, 10_000)),
            "miss": seed.write_pid_file(self.tmp / "miss.txt", seed.miss_pids(ds, 10_000)),
            "owners": seed.write_pid_file(
                self.tmp / "owners.txt", seed.owner_pids(ds, min(10_000, ds.owners * 5))
            ),
        }
        script = (REPO / "config" / "demo" / "fisheries.sql").read_text(encoding="utf-8")
        with contextlib.closing(sqlite3.connect(self.sqlite_path)) as db:
            db.executescript(script)
            db.commit()
            db.text_factory = bytes
            raw = [r[0] for r in db.execute("SELECT PID FROM FISHER_REG")]
        demo = sorted({"".join(c for c in p.decode("ascii", "ignore") if c.isdigit()) for p in raw})
        self.pid_files["sqlite"] = seed.write_pid_file(
            self.tmp / "sqlite.txt", [p for p in demo if len(p) == 13]
        )
        self.hash = password_hash(PASSWORD)

    def gateway_cfg(self, port: int, admin_port: int, audit: dict[str, Any]) -> dict[str, Any]:
        return gateway_config(
            port=port,
            admin_port=admin_port,
            pg_dsn=self.pg_dsn,
            sqlite_path=self.sqlite_path,
            audit=audit,
            password_hash=self.hash,
            pool_size=self.opts.pool,
        )

    def _tree(self, name: str, patches: Sequence[Path], base: Path | None = None) -> Path:
        if name not in self.trees:
            self.trees[name] = build_tree(
                patches, self.tmp / f"tree-{name}", base=base or self.main
            )
        return self.trees[name]

    def start_gateway(
        self,
        name: str,
        *,
        tree: Path,
        audit_dir: Path,
        workers: int = 1,
        audit: bool = True,
    ) -> Instance:
        port, admin = free_port(), free_port(span=workers)
        store: dict[str, Any] = {
            "path": str(audit_dir / f"audit-{name}.sqlite"),
            "key": "${LC2_BENCH_AUDIT_KEY}",
        }
        cfg = write_config(self.tmp / f"{name}.yaml", self.gateway_cfg(port, admin, store))
        inst = start_gateway(
            self.sup, name, src=tree, config=cfg, port=port, admin_port=admin, workers=workers,
            audit=audit,
        )
        self.log(f"  {name}: gateway on :{port} (admin :{admin}), ready {inst.ready_seconds:.2f}s")
        return inst

    def start(self, scenarios: Sequence[Scenario]) -> list[Scenario]:
        """Start every instance the scenarios need; returns those that can run here."""
        wanted: list[str] = []
        for s in scenarios:
            for name in (s.floor, s.peer, s.gateway, s.ceiling):
                if name not in wanted:
                    wanted.append(name)
        if self.has_variant:
            wanted.append("gwp")
        runnable = list(scenarios)
        for name in wanted:
            try:
                self.instances[name] = self._start_instance(name)
            except _Unavailable as why:
                for s in scenarios:
                    if name in (s.floor, s.peer, s.gateway, s.ceiling):
                        self.unavailable[s.name] = str(why)
                        if s in runnable:
                            runnable.remove(s)
                self.log(f"  {name}: not available: {why}")
        return runnable

    def ready(self, scenarios: Sequence[Scenario]) -> list[Scenario]:
        """Start what the scenarios need and check each that can run here answers rightly."""
        runnable = self.start(scenarios)
        for s in runnable:
            self.preflight(s)
        return runnable

    def _start_instance(self, name: str) -> Instance:
        opts = self.opts
        if name in ("floor", "floor2", "peer", "peer2"):
            kind = name.rstrip("2")
            inst = start_floor(
                self.sup,
                name,
                pg_dsn=self.pg_dsn,
                sqlite_path=self.sqlite_path,
                pool_size=opts.pool,
                processes=2 if name.endswith("2") else 1,
                kind=kind,
            )
            self.log(f"  {name}: {kind} on :{inst.port}")
            return inst
        if name in ("nginx", "nginx2"):
            inst = start_nginx(
                self.sup, name, workdir=self.tmp, static=self.static,
                workers=2 if name == "nginx2" else 1,
            )
            self.log(f"  {name}: nginx on :{inst.port}")
            return inst
        if name == "gw":
            return self.start_gateway(name, tree=self.main, audit_dir=self.tmp)
        if name == "gw_tmpfs":
            return self.start_gateway(name, tree=self.main, audit_dir=self.shm)
        if name == "gw_w2":
            if not supports_workers(self.main):
                raise _Unavailable("this gateway has no `serve --workers`")
            return self.start_gateway(name, tree=self.main, audit_dir=self.tmp, workers=2)
        if name == "gw_noaudit":
            return self.start_gateway(name, tree=self.main, audit_dir=self.tmp, audit=False)
        if name == "gwp":
            return self.start_gateway(name, tree=self.patched_tree(), audit_dir=self.tmp)
        raise ValueError(name)

    # -- preflight: every target answers what it should --------------------------

    def targets(self, s: Scenario) -> dict[str, Instance]:
        out = {
            "floor": self.instances[s.floor],
            "peer": self.instances[s.peer],
            "gateway": self.instances[s.gateway],
            "ceiling": self.instances[s.ceiling],
        }
        if "gwp" in self.instances and s.patchable:
            out["variant"] = self.instances["gwp"]
        return out

    def first_pid_of(self, key: str) -> str:
        return self.pid_files[key].read_text(encoding="ascii").split("\n", 1)[0]

    def first_pid(self, s: Scenario) -> str:
        return "" if s.pids is None else self.first_pid_of(s.pids)

    @property
    def has_variant(self) -> bool:
        return bool(self.opts.patches or self.opts.variant_src)

    def patched_tree(self) -> Path:
        """The variant: --variant-src (or the measured tree) with every --patch applied."""
        return self._tree("variant", self.opts.patches, self.opts.variant_src)

    def request_path(self, s: Scenario, inst: Instance, probe: bool = False) -> str:
        path = s.probe if probe and s.probe is not None else s.path
        if inst.kind == "ceiling":
            query = "?personalId=" if path.endswith("?personalId=") else ""
            return f"/{s.static_name(probe)}.json{query}"
        return path

    def preflight(self, s: Scenario) -> None:
        pid = self.first_pid(s)
        targets = self.targets(s)
        for probe in (False, True) if s.probe else (False,):
            gw = targets["gateway"]
            path = (s.probe or "") if probe else s.path + pid
            status, _, body = http_get(gw.port, path, LC2_HEADERS)
            if status != 200:
                raise RuntimeError(f"{s.name}: gateway answered {status}: {body[:300]!r}")
            data = json.loads(body)
            if not probe and s.path != "/health":
                _check_rows(s, "gateway", data.get("data"), data)
            (self.static / f"{s.static_name(probe)}.json").write_bytes(body)
            for name, inst in targets.items():
                if name == "gateway":
                    continue
                tpath = self.request_path(s, inst, probe) + (pid if not probe and s.pids else "")
                tstatus, _, tbody = http_get(inst.port, tpath, LC2_HEADERS)
                if tstatus != 200:
                    raise RuntimeError(f"{s.name}: {name} answered {tstatus}: {tbody[:300]!r}")
                if not probe and s.path != "/health" and name != "ceiling":
                    _check_rows(s, name, json.loads(tbody).get("data"), tbody)

    def preflight_instance(self, s: Scenario, inst: Instance) -> None:
        """A gateway started on its own (soak) answers the scenario as it should."""
        status, _, body = http_get(inst.port, s.path + self.first_pid(s), LC2_HEADERS)
        if status != 200:
            raise RuntimeError(f"{s.name}: {inst.name} answered {status}: {body[:300]!r}")
        _check_rows(s, inst.name, json.loads(body).get("data"), body)

    # -- measuring -----------------------------------------------------------------

    def _load(self, s: Scenario, inst: Instance, seconds: int, probe: bool = False) -> Load:
        conns = s.connections or self.opts.connections
        if s.probe is not None:
            conns = 2 if probe else max(1, conns - 2)
        return Load(
            port=inst.port,
            path=self.request_path(s, inst, probe),
            pids=None if probe or s.pids is None else self.pid_files[s.pids],
            connections=conns,
            seconds=seconds,
            threads=self.opts.threads,
            max_requests=self.opts.max_requests,
        )

    def _wrk(self, s: Scenario, inst: Instance, seconds: int) -> tuple[WrkResult, WrkResult | None]:
        if s.probe is None:
            return run_wrk(self.script, self._load(s, inst, seconds)), None
        # Both from this thread, no worker thread: an interrupt here reaches the waits and
        # stops both at once.  wrk writes a few lines, so waiting on one before reading
        # the other can not stall it on a full pipe.
        main = start_wrk(self.script, self._load(s, inst, seconds))
        try:
            probe = start_wrk(self.script, self._load(s, inst, seconds, probe=True))
            try:
                return probe.result(), main.result()
            finally:
                probe.stop()
        finally:
            main.stop()

    def measure(self, s: Scenario, target: str, inst: Instance, run: int) -> Sample:
        if self.opts.warmup > 0:
            self._wrk(s, inst, self.opts.warmup)
        pids = inst.proc.pids
        reset_peak(pids)
        cpu0, ticks0 = cpu_seconds(pids), machine_ticks()
        res, main = self._wrk(s, inst, self.opts.duration)
        cpu = cpu_seconds(pids) - cpu0
        busy = machine_busy_since(ticks0)
        if not inst.proc.alive():
            raise RuntimeError(f"{inst.name} died under load:\n{inst.proc.tail()}")
        total = res.requests + (main.requests if main else 0)
        return Sample(
            scenario=s.name,
            target=target,
            run=run,
            rps=res.rps,
            p50_ms=res.p50_ms,
            p99_ms=res.p99_ms,
            cpu_ms_per_req=cpu * 1000 / max(1, total),
            peak_rss_mb=peak_rss_mb(pids),
            requests=total,
            errors=res.errors + (main.errors if main else 0),
            bad_status=res.bad_status + (main.bad_status if main else 0),
            capped=res.capped,
            machine_busy=busy,
            load_rps=main.rps if main else 0.0,
        )

    def run(self, scenarios: Sequence[Scenario]) -> Iterator[Sample]:
        for run in range(self.opts.runs):
            for s in scenarios:
                targets = list(self.targets(s).items())
                k = run % len(targets)  # rotate the order: drift does not favour one target
                for target, inst in targets[k:] + targets[:k]:
                    sample = self.measure(s, target, inst, run)
                    self.log(
                        f"  run {run + 1}/{self.opts.runs} {s.name:<12} {target:<8} "
                        f"{sample.rps:>9,.0f} req/s  p50 {sample.p50_ms:6.2f} ms  "
                        f"p99 {sample.p99_ms:7.2f} ms  cpu {sample.cpu_ms_per_req:.3f} ms/req"
                        + (f"  !{sample.bad_status} bad status" if sample.bad_status else "")
                        + (f"  !{sample.errors} socket errors" if sample.errors else "")
                    )
                    yield sample

    def dump_logs(self, lines: int = 20) -> None:
        """The last lines each running target wrote, to explain a failure."""
        for proc in self.sup.procs:
            tail = proc.tail(lines)
            if tail:
                self.log(f"--- {proc.name} ({proc.log.name}) ---\n{tail}")

    def stop_targets(self) -> None:
        self.sup.stop_all()
        self.instances.clear()

    def close(self) -> None:
        stop_loads()  # first: a load left running would only hammer the stopping targets
        self.sup.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)


@contextlib.contextmanager
def running(opts: Options, *, drop_after: bool) -> Iterator[Session]:
    """A session whose processes and files go on every exit path, SIGTERM and Ctrl-C too.

    SIGTERM and SIGINT become one KeyboardInterrupt, which leaves the ``with`` after
    its message; a repeated signal can not cut the clean-up short.  The caller answers
    KeyboardInterrupt with exit code 130.
    """
    with interrupts():
        with shielded():  # no temporary directory made and then forgotten
            session = Session(opts)
        try:
            yield session
        except KeyboardInterrupt:
            print(
                "\ninterrupted: stopping every process and removing temporary files",
                file=sys.stderr,
            )
            raise
        except Exception:
            session.dump_logs()
            raise
        finally:
            with shielded():  # a signal now waits for the end of the clean-up
                session.close()
                if drop_after:
                    asyncio.run(seed.drop_database(opts.server_dsn, opts.database))


class _Unavailable(Exception):
    pass


def _check_rows(s: Scenario, target: str, data: object, body: object) -> None:
    if not isinstance(data, list):
        raise RuntimeError(f"{s.name}: {target} answer has no data list: {str(body)[:300]}")
    if s.rows is not None and len(data) != s.rows:
        raise RuntimeError(f"{s.name}: {target} gave {len(data)} rows, expected {s.rows}")
    if s.rows is None and not data:
        raise RuntimeError(f"{s.name}: {target} gave no rows")

