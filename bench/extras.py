"""Start-up time, the RSS soak and the hot-path profile."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.load import Load, WrkResult, run_wrk
from bench.procs import Proc, free_port, http_get, peak_rss_mb, rss_mb, thread_cpu, wait_http
from bench.scenarios import Scenario
from bench.suite import LC2_HEADERS, Session
from bench.targets import REPO, gateway_env, write_config
from bench.workload import many_services_config

__all__ = ["measure_startup", "pairs", "profile", "render_pairs", "soak", "summarise_speedscope"]


def _import_seconds(tree: Path) -> float:
    code = "import time; t = time.perf_counter(); import gateway.server; " \
        "print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=gateway_env(tree), capture_output=True,
        text=True, check=True,
    )
    return float(out.stdout.strip())


def _time_to_ready(
    session: Session,
    tree: Path,
    name: str,
    cfg: dict[str, Any],
    admin: int,
    then: Callable[[Proc], dict[str, float]] | None = None,
) -> tuple[float, dict[str, float]]:
    path = write_config(session.tmp / f"{name}.yaml", cfg)
    argv = [sys.executable, "-m", "gateway", "serve", "-c", str(path)]
    t0 = time.monotonic()
    proc = session.sup.start(name, argv, env=gateway_env(tree), cwd=tree)
    try:
        wait_http(proc, admin, "/ready", timeout=60, poll=0.002)
        ready = time.monotonic() - t0
        return ready, then(proc) if then is not None else {}
    finally:
        session.sup.stop(proc)


def _cold_burst(session: Session, port: int, seconds: int) -> Callable[[Proc], dict[str, float]]:
    """Every connection at once on a gateway that has not seen a call yet (08:30 in a
    province): the first calls verify credentials, nothing is cached."""

    def burst(proc: Proc) -> dict[str, float]:
        load = Load(
            port=port, path="/api/v1/fisher?personalId=", pids=session.pid_files["hit"],
            connections=session.opts.connections, seconds=seconds, threads=session.opts.threads,
        )
        res = run_wrk(session.script, load)
        return {
            "requests": float(res.requests),
            "bad": float(res.bad_status + res.errors),
            "p50_ms": res.p50_ms,
            "p99_ms": res.p99_ms,
            "max_ms": res.max_ms,
            "peak_rss_mb": peak_rss_mb(proc.pids),
        }

    return burst


def _startup_of(session: Session, tree: Path, services: int, runs: int) -> dict[str, Any]:
    audit = {"path": str(session.tmp / "audit-startup.sqlite"), "key": "${LC2_BENCH_AUDIT_KEY}"}
    many: list[float] = []
    base: list[float] = []
    bursts: list[dict[str, float]] = []
    for _ in range(runs):
        port, admin = free_port(), free_port()
        cfg = many_services_config(
            services, port=port, admin_port=admin, pg_dsn=session.pg_dsn, audit=audit,
            password_hash=session.hash,
        )
        many.append(_time_to_ready(session, tree, "startup-many", cfg, admin)[0])
        port, admin = free_port(), free_port()
        ready, burst = _time_to_ready(
            session, tree, "startup-bench", session.gateway_cfg(port, admin, audit), admin,
            then=_cold_burst(session, port, 2),
        )
        base.append(ready)
        bursts.append(burst)
    imports = [_import_seconds(tree) for _ in range(max(1, runs))]
    return {
        "services": services,
        "services50_s": statistics.median(many),
        "bench_config_s": statistics.median(base),
        "import_gateway_server_s": statistics.median(imports),
        "runs_s": many,
        "cold_burst": {k: statistics.median(b[k] for b in bursts) for k in bursts[0]},
    }


def measure_startup(session: Session, services: int, runs: int) -> dict[str, Any]:
    """Seconds from process start to ``/ready`` 200 on the admin port (medians), and a
    cold burst right after; for the variant too when there is one."""
    result = _startup_of(session, session.main, services, runs)
    if session.has_variant:
        result["variant"] = _startup_of(session, session.patched_tree(), services, runs)
    for label, r in (("gateway", result), ("variant", result.get("variant"))):
        if r is None:
            continue
        cold = r["cold_burst"]
        session.log(
            f"  {label}: start-up to ready with {services} services {r['services50_s']:.2f} s, "
            f"bench config (3 services) {r['bench_config_s']:.2f} s, of which "
            f"`import gateway.server` {r['import_gateway_server_s']:.2f} s; cold burst "
            f"({session.opts.connections} connections, 2 s, right after ready): "
            f"p50 {cold['p50_ms']:.1f} ms, p99 {cold['p99_ms']:.1f} ms, "
            f"max {cold['max_ms']:.1f} ms, peak RSS {cold['peak_rss_mb']:.1f} MB"
        )
    return result


def soak(
    session: Session, scenario: Scenario, requests: int, max_seconds: float, chunk: int = 5
) -> dict[str, Any]:
    """~``requests`` single-row calls in chunks; RSS after each chunk; growth after warm-up."""
    gw = session.start_gateway("gw_soak", tree=session.main, audit_dir=session.tmp)
    session.preflight_instance(scenario, gw)
    samples: list[dict[str, float]] = []
    total = 0
    t0 = time.monotonic()
    warm = requests // 10
    conns = session.opts.connections
    # a chunk smaller than the connection count would stop wrk before any answer lands
    while total < requests - conns and time.monotonic() - t0 < max_seconds:
        load = Load(
            port=gw.port,
            path=scenario.path,
            pids=session.pid_files["hit"],
            connections=session.opts.connections,
            seconds=chunk,
            threads=session.opts.threads,
            max_requests=max(requests - total, 4 * conns),
        )
        res = run_wrk(session.script, load)
        if res.bad_status or res.errors:
            raise RuntimeError(f"soak: {res.bad_status} bad answers, {res.errors} socket errors")
        if res.requests == 0:
            raise RuntimeError("soak: a chunk answered nothing")
        total += res.requests
        samples.append(
            {"seconds": time.monotonic() - t0, "requests": total, "rss_mb": rss_mb(gw.proc.pids)}
        )
        session.log(
            f"  soak {total:>9,} requests  {res.rps:7,.0f} req/s  "
            f"RSS {samples[-1]['rss_mb']:.1f} MB"
        )
    after = [s for s in samples if s["requests"] >= warm] or samples
    start_rss = after[0]["rss_mb"]
    end_rss = statistics.median(s["rss_mb"] for s in samples[-3:])
    slope = 0.0
    if len(after) >= 3:
        slope = statistics.linear_regression(
            [s["requests"] for s in after], [s["rss_mb"] for s in after]
        ).slope * 100_000
    result = {
        "requests": float(total),
        "seconds": time.monotonic() - t0,
        "warmup_requests": float(warm),
        "rss_after_warmup_mb": start_rss,
        "rss_end_mb": end_rss,
        "growth_mb": end_rss - start_rss,
        "slope_mb_per_100k": slope,
        "peak_rss_mb": peak_rss_mb(gw.proc.pids),
        "samples": samples,
    }
    session.sup.stop(gw.proc)
    return result


def stages(session: Session) -> dict[str, Any]:
    """bench/stages.py for the gateway under test and, with --patch, the variant."""
    cfg = write_config(
        session.tmp / "stages.yaml",
        session.gateway_cfg(
            free_port(), free_port(),
            {"path": str(session.tmp / "audit-stages.sqlite"), "key": "${LC2_BENCH_AUDIT_KEY}"},
        ),
    )
    pids = {
        "single": session.first_pid_of("hit"),
        "owner": session.first_pid_of("owners"),
    }
    trees = {"gateway": session.main}
    if session.has_variant:
        trees["variant"] = session.patched_tree()
    out: dict[str, Any] = {}
    for label, tree in trees.items():
        env = gateway_env(tree)
        env["PYTHONPATH"] += os.pathsep + str(REPO)  # bench itself
        proc = subprocess.run(
            [sys.executable, "-m", "bench.stages", "--config", str(cfg),
             "--pid-single", pids["single"], "--pid-owner", pids["owner"]],
            cwd=tree, env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"bench.stages on {label}: {proc.stderr[-2000:]}")
        out[label] = json.loads(proc.stdout)
    return out


def render_stages(result: dict[str, Any]) -> str:
    labels = list(result)
    cases = list(result[labels[0]])
    lines = ["CPU microseconds per call, by stage (thread CPU clock, best of 5 x 2000)"]
    for case in cases:
        rows = int(result[labels[0]][case]["rows"])
        head = f"  {case} ({rows} row{'s' if rows != 1 else ''})"
        lines.append(f"{head:<34}" + "".join(f"{label:>12}" for label in labels)
                     + ("      gain" if len(labels) > 1 else ""))
        for stage in result[labels[0]][case]:
            if stage == "rows":
                continue
            values = [result[label][case].get(stage) for label in labels]
            cells = "".join(f"{v:>12.1f}" if v is not None else f"{'-':>12}" for v in values)
            gain = ""
            if len(values) > 1 and values[0] and values[-1] is not None:
                gain = f"  {(1 - values[-1] / values[0]) * 100:+7.0f}%"
            lines.append(f"    {stage:<30}{cells}{gain}")
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    return found


def profile(
    session: Session, scenarios: Sequence[Scenario], seconds: int, out_dir: Path, stamp: str
) -> dict[str, Any]:
    """py-spy (speedscope format) of the gateway, then of the floor, under each scenario's
    load: the parts' time per call side by side shows where the gateway's extra CPU goes."""
    spy = _py_spy()
    results: dict[str, Any] = {}
    for s in scenarios:
        per_target: dict[str, Any] = {}
        for target, key in (("gateway", s.gateway), ("floor", s.floor)):
            inst = session.instances.get(key)
            if inst is None:
                continue
            out = out_dir / f"{stamp}-{s.name}-{target}.speedscope.json"
            summary = _profile_one(session, spy, s, inst, seconds, out)
            per_target[target] = {"file": str(out), **summary}
            session.log(f"\nprofile {s.name}, {target}: {out}")
            session.log(render_profile(summary))
        if {"gateway", "floor"} <= per_target.keys():
            session.log(render_parts(per_target["floor"], per_target["gateway"]))
        results[s.name] = per_target
    return results


def _profile_one(
    session: Session, spy: str, s: Scenario, inst: Any, seconds: int, out: Path
) -> dict[str, Any]:
    pid = inst.proc.popen.pid
    load = session._load(s, inst, seconds + session.opts.warmup + 2)
    done: list[WrkResult] = []
    worker = threading.Thread(
        target=lambda: done.append(run_wrk(session.script, load)), daemon=True
    )
    worker.start()
    time.sleep(session.opts.warmup + 1)
    before = thread_cpu(pid)
    t0 = time.monotonic()
    subprocess.run(
        [spy, "record", "--pid", str(pid), "--duration", str(seconds),
         "--rate", "200", "--nonblocking", "--format", "speedscope", "--output", str(out)],
        capture_output=True, check=True,
    )
    wall = time.monotonic() - t0
    after = thread_cpu(pid)
    worker.join()
    summary = summarise_speedscope(out)
    summary["thread_cpu_share"] = {
        str(tid): cpu / wall for tid, cpu in _spent(before, after).items() if cpu > 0
    }
    # the load's mean rate stands for the rate inside the sampled window
    summary["calls"] = done[0].rps * wall if done else 0.0
    return summary


def render_parts(floor: dict[str, Any], gateway: dict[str, Any]) -> str:
    """Each part's busy time of the main thread per call (µs): py-spy counts only the
    samples where the thread ran Python or was inside a C call, so this leaves out idling."""

    def per_call(summary: dict[str, Any]) -> dict[str, float]:
        calls = summary.get("calls") or 0.0
        if not calls:
            return {}
        busy = summary["samples"] / calls * 1e6  # weights are seconds
        return {name: share * busy for name, share in summary.get("buckets", [])}

    f, g = per_call(floor), per_call(gateway)
    lines = ["  main thread, µs per call by part      floor   gateway     extra"]
    for name in sorted(set(f) | set(g), key=lambda n: -(g.get(n, 0.0) - f.get(n, 0.0))):
        a, b = f.get(name, 0.0), g.get(name, 0.0)
        lines.append(f"    {name[:34]:34} {a:8.1f}  {b:8.1f}  {b - a:+8.1f}")
    lines.append(f"    {'all':34} {sum(f.values()):8.1f}  {sum(g.values()):8.1f}  "
                 f"{sum(g.values()) - sum(f.values()):+8.1f}")
    return "\n".join(lines)


def _frame_name(frame: dict[str, Any]) -> str:
    file = re.sub(r"^.*/tree-[^/]+/", "", str(frame.get("file", "")))  # a copied source tree
    for marker in ("site-packages/", "/lib/python3", "/work/main/", str(REPO) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{frame.get('name', '?')} ({file})"


# Where a sample's time goes: the leaf-most frame that matches a rule names it.
_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("normalise: mapping + transforms", ("gateway/transforms/", "gateway/normalise.py")),
    ("audit: to_row + commit wait", ("gateway/audit/",)),
    ("request: auth + params", ("gateway/auth.py", "gateway/request.py", "gateway/params.py")),
    ("metrics", ("gateway/metrics.py", "prometheus_client/")),
    ("logging", ("gateway/logs.py", "/logging/")),
    ("respond: JSON", ("gateway/respond.py",)),
    ("asyncpg driver", ("asyncpg/",)),
    ("sqlite driver", ("aiosqlite/", "/sqlite3/")),
    ("adapter", ("adapters/",)),
    ("plan + guard", ("gateway/plan.py", "gateway/guard.py", "gateway/breaker.py",
                      "gateway/execute.py", "gateway/quota.py", "gateway/sandbox/")),
    ("pipeline glue", ("gateway/pipeline.py", "gateway/observe.py", "gateway/app.py",
                       "gateway/router.py", "gateway/runtime.py", "/uuid.py")),
    ("aiohttp", ("aiohttp/", "multidict/", "yarl/")),
    ("asyncio machinery", ("/asyncio/",)),
)


def _bucket(files: Sequence[str], leaf_name: str) -> str:
    if leaf_name == "Runner.run":
        return "event loop in C (uvloop, HTTP parser, writes)"
    for file in reversed(files):
        for bucket, markers in _BUCKETS:
            if any(m in file for m in markers):
                return bucket
    return "other"


def summarise_speedscope(path: Path, top: int = 30) -> dict[str, Any]:
    """Self and inclusive sample shares per function, for the busiest thread."""
    data = json.loads(path.read_text(encoding="utf-8"))
    frames = [_frame_name(f) for f in data["shared"]["frames"]]
    files = [str(f.get("file", "")) for f in data["shared"]["frames"]]
    names = [str(f.get("name", "")) for f in data["shared"]["frames"]]
    best: dict[str, Any] | None = None
    for prof in data["profiles"]:
        if best is None or len(prof.get("samples", [])) > len(best.get("samples", [])):
            best = prof
    if best is None:
        return {"samples": 0, "self": [], "inclusive": []}
    self_count: Counter[str] = Counter()
    incl_count: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    samples = best["samples"]
    weights = best.get("weights") or [1] * len(samples)
    total = sum(weights)
    for stack, w in zip(samples, weights, strict=True):
        if not stack:
            continue
        self_count[frames[stack[-1]]] += w
        buckets[_bucket([files[i] for i in stack], names[stack[-1]])] += w
        for name in {frames[i] for i in stack}:
            incl_count[name] += w
    return {
        "thread": best.get("name"),
        "samples": total,
        "buckets": [(n, c / total) for n, c in buckets.most_common()],
        "self": [(n, c / total) for n, c in self_count.most_common(top)],
        "inclusive": [(n, c / total) for n, c in incl_count.most_common(top * 2)],
    }


def render_profile(summary: dict[str, Any]) -> str:
    lines = ["  CPU by thread (share of one core, py-spy names threads by these ids):"]
    for tid, share in sorted(summary.get("thread_cpu_share", {}).items(), key=lambda x: -x[1]):
        lines.append(f"    thread {tid}: {share * 100:5.1f}%")
    lines += [f"  {summary.get('thread')}: {summary['samples']:.1f} s of samples", "  by part:"]
    lines += [f"    {share * 100:5.1f}%  {name}" for name, share in summary.get("buckets", [])]
    lines.append("  self time:")
    lines += [f"    {share * 100:5.1f}%  {name}" for name, share in summary["self"][:20]]
    lines.append("  inclusive time:")
    lines += [f"    {share * 100:5.1f}%  {name}" for name, share in summary["inclusive"][:40]]
    return "\n".join(lines)


# -- where a call's latency goes under load -------------------------------------------------

_AUDIT_SERIES = (
    "lc2_gateway_audit_write_duration_seconds_sum",
    "lc2_gateway_audit_write_duration_seconds_count",
    "lc2_gateway_audit_batch_size_sum",
)


def _audit_counters(admin_port: int) -> dict[str, float]:
    _, _, body = http_get(admin_port, "/metrics")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in _AUDIT_SERIES:
            out[name] = float(value)
    return out


def _sample_timings(port: int, paths: Sequence[str], seconds: float) -> dict[str, list[float]]:
    """Calls one after another on one connection beside the load, each ``Server-Timing`` kept."""
    rng = random.Random(11)
    parts: dict[str, list[float]] = {"total": []}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            conn.request("GET", rng.choice(paths), headers=LC2_HEADERS)
            resp = conn.getresponse()
            resp.read()
            parts["total"].append((time.perf_counter() - t0) * 1000)
            for item in (resp.getheader("Server-Timing") or "").split(", "):
                name, _, dur = item.partition(";dur=")
                if dur:
                    parts.setdefault(name, []).append(float(dur))
    finally:
        conn.close()
    return parts


def latency_parts(session: Session, scenarios: Sequence[Scenario], seconds: int) -> dict[str, Any]:
    """Under each scenario's load, a call's stages (``Server-Timing``, p50 ms) and the audit
    writer's batches (records and milliseconds each), for the gateway and the variant:
    which stage a busy gateway's latency, and so its rate at a fixed number of
    connections, waits in."""
    results: dict[str, Any] = {}
    for s in scenarios:
        if s.pids is None:
            continue
        prefix = s.path
        pids = session.pid_files[s.pids].read_text(encoding="ascii").split()[:5000]
        paths = [prefix + p for p in pids]
        per_target: dict[str, Any] = {}
        for target, inst in session.targets(s).items():
            if target not in ("gateway", "variant") or inst.admin_port is None:
                continue
            load = session._load(s, inst, seconds + session.opts.warmup + 2)
            done: list[WrkResult] = []
            worker = threading.Thread(
                target=lambda load=load, done=done: done.append(run_wrk(session.script, load)),
                daemon=True,
            )
            worker.start()
            time.sleep(session.opts.warmup)
            pid = inst.proc.popen.pid
            before = _audit_counters(inst.admin_port)
            cpu_before, t0 = thread_cpu(pid), time.monotonic()
            parts = _sample_timings(inst.port, paths, seconds)
            cpu_after, wall = thread_cpu(pid), time.monotonic() - t0
            after = _audit_counters(inst.admin_port)
            worker.join()
            threads = _thread_costs(pid, cpu_before, cpu_after, wall, done[0].rps if done else 0.0)
            batches = after.get(_AUDIT_SERIES[1], 0.0) - before.get(_AUDIT_SERIES[1], 0.0)
            per_target[target] = {
                "p50_ms": {k: statistics.median(v) for k, v in parts.items() if v},
                "samples": len(parts["total"]),
                "load_rps": done[0].rps if done else 0.0,
                "audit_batches": batches,
                "audit_records_per_batch": (
                    (after.get(_AUDIT_SERIES[2], 0.0) - before.get(_AUDIT_SERIES[2], 0.0)) / batches
                    if batches else 0.0
                ),
                "audit_ms_per_batch": (
                    (after.get(_AUDIT_SERIES[0], 0.0) - before.get(_AUDIT_SERIES[0], 0.0))
                    / batches * 1000 if batches else 0.0
                ),
                **threads,
            }
        results[s.name] = per_target
    return results


def _spent(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds each thread ran between two ``thread_cpu`` readings (a new one: all)."""
    return {tid: after[tid] - before.get(tid, 0.0) for tid in after}


def _thread_costs(
    pid: int, before: dict[int, float], after: dict[int, float], wall: float, rps: float
) -> dict[str, float]:
    """The loop thread's CPU a call and its busy share of a core, and the other threads'
    CPU a call (the audit writer's among them).  A loop thread well short of a whole core
    while calls queue waits off the CPU: for the GIL or for the audit's commit."""
    spent = _spent(before, after)
    loop = spent.pop(pid, 0.0)
    calls = rps * wall
    return {
        "loop_us_per_call": loop / calls * 1e6 if calls else 0.0,
        "loop_busy": loop / wall if wall > 0 else 0.0,
        "others_us_per_call": sum(spent.values()) / calls * 1e6 if calls else 0.0,
    }


def render_parts_of_latency(results: dict[str, Any]) -> str:
    stages = ("total", "request", "plan", "execute", "normalise", "audit")
    lines = [
        "where a call's time goes under load (p50 ms of calls sampled beside the load; "
        "audit batches in the same window; loop: the event loop thread's CPU a call and its "
        "busy share of a core, other: the other threads' CPU a call)",
        f"{'scenario':12} {'target':8} {'load req/s':>10} "
        + " ".join(f"{n:>9}" for n in stages)
        + f" {'rec/batch':>9} {'ms/batch':>8} {'loop µs':>8} {'busy':>5} {'other µs':>8}",
    ]
    for name, per_target in results.items():
        for target, r in per_target.items():
            p50 = r["p50_ms"]
            lines.append(
                f"{name:12} {target:8} {r['load_rps']:>10,.0f} "
                + " ".join(f"{p50.get(n, 0.0):>9.2f}" for n in stages)
                + f" {r['audit_records_per_batch']:>9.1f} {r['audit_ms_per_batch']:>8.2f}"
                + f" {r['loop_us_per_call']:>8.0f} {r['loop_busy']:>5.2f}"
                + f" {r['others_us_per_call']:>8.0f}"
            )
    return "\n".join(lines)


def pairs(session: Session, scenarios: Sequence[Scenario], n: int) -> dict[str, Any]:
    """The gateway and the variant only, back to back, ``n`` times per scenario with the
    order alternating; each pair's ratio (variant/gateway) is its own.  On a shared machine
    whose speed drifts within minutes both members of a pair meet the same drift, where a
    whole run's rotation puts other targets between them."""
    results: dict[str, Any] = {}
    for s in scenarios:
        targets = session.targets(s)
        if "variant" not in targets:
            raise RuntimeError("--pairs needs a variant: --patch, --ref or --variant-src")
        both = [("gateway", targets["gateway"]), ("variant", targets["variant"])]
        rows: list[dict[str, Any]] = []
        for i in range(n):
            order = both if i % 2 == 0 else both[::-1]
            got = {t: session.measure(s, t, inst, i) for t, inst in order}
            row: dict[str, Any] = {
                t: {"rps": m.rps, "p99_ms": m.p99_ms, "cpu_ms_per_req": m.cpu_ms_per_req}
                for t, m in got.items()
            }
            row["first"] = next(iter(got))
            row["ratio"] = got["variant"].rps / got["gateway"].rps if got["gateway"].rps else 0.0
            row["p99_ratio"] = (
                got["variant"].p99_ms / got["gateway"].p99_ms if got["gateway"].p99_ms else 0.0
            )
            session.log(
                f"  pair {i + 1}/{n} {s.name:<12} gateway {got['gateway'].rps:>8,.0f}  "
                f"variant {got['variant'].rps:>8,.0f} req/s  variant/gateway {row['ratio']:.3f}"
                f"  p99 {got['gateway'].p99_ms:.1f} / {got['variant'].p99_ms:.1f} ms"
            )
            rows.append(row)
        ratios = [r["ratio"] for r in rows]
        results[s.name] = {
            "pairs": rows,
            "median_ratio": statistics.median(ratios),
            "min_ratio": min(ratios),
            "max_ratio": max(ratios),
            "variant_ahead": sum(r > 1 for r in ratios),
            "median_p99_ratio": statistics.median(r["p99_ratio"] for r in rows),
        }
    return results


def render_pairs(results: dict[str, Any]) -> str:
    lines = ["variant against gateway, pair by pair (throughput ratio; the order alternates)"]
    for name, r in results.items():
        ratios = " ".join(f"{p['ratio']:.2f}" for p in r["pairs"])
        lines.append(
            f"  {name:<12} median {r['median_ratio']:.3f}  range {r['min_ratio']:.2f}-"
            f"{r['max_ratio']:.2f}  variant ahead in {r['variant_ahead']} of {len(r['pairs'])}"
            f"  ({ratios}); p99 variant/gateway, median {r['median_p99_ratio']:.2f}"
        )
    return "\n".join(lines)
