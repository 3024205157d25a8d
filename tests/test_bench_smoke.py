"""The benchmark harness still runs end to end: a smoke, never a timing test.

A tiny dataset, one run, a few hundred requests per target (each load stops
after 300, within its one second).  Only the shape is checked: every
scenario has its row, audit-off and workers2 included, and every figure is a
sane, non-zero number.  No threshold on any speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.procs import tree
from bench.run import DEFAULT_DSN, main
from bench.scenarios import SCENARIOS
from bench.seed import drop_database
from bench.targets import REPO

_TARGETS = ("floor", "peer", "gateway", "ceiling")


def _tiny_database() -> list[str]:
    """A database of its own for each run, seeded small and dropped after."""
    name = f"lc2_bench_smoke_{uuid.uuid4().hex[:8]}"
    return ["--rows", "2000", "--database", name, "--drop-after"]


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
        pytest.fail(f"{tool} is needed by the benchmark harness: apt-get install {package}",
                    pytrace=False)


def test_harness_prints_a_row_for_every_scenario(tmp_path: Path) -> None:
    _require("wrk", "wrk")
    _require("nginx", "nginx-light")
    out = tmp_path / "results.json"
    code = main([
        *_tiny_database(),
        "--runs", "1",
        "--duration", "1",
        "--warmup", "0",
        "--connections", "4",
        "--max-requests", "300",
        "--startup-runs", "1",
        "--results-dir", str(tmp_path),
        "--json", str(out),
    ])
    assert code == 0
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    summary: dict[str, dict[str, dict[str, float]]] = results["summary"]
    unavailable: dict[str, str] = results["unavailable"]
    table: str = results["table"]
    assert unavailable == {}, unavailable  # this checkout has every feature a scenario needs
    for scenario in SCENARIOS:
        assert any(line.startswith(scenario.name + " ") for line in table.splitlines()), (
            f"no row for {scenario.name}:\n{table}"
        )
        for target in _TARGETS:
            row = summary[scenario.name][target]
            assert row["rps"] > 0, (scenario.name, target, row)
            assert row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"], (scenario.name, row)
            assert row["cpu_ms_per_req"] >= 0 and row["peak_rss_mb"] > 0, (scenario.name, row)
            assert row["bad"] == 0, f"{scenario.name}/{target}: non-2xx answers or socket errors"
        assert summary[scenario.name]["gateway"]["cpu_ms_per_req"] > 0
    assert results["startup"]["services50_s"] > 0
    assert "issue 6 targets" in results["report"]
    assert "targets against the hand-written peer" in results["report"]
    assert results["peer_targets"][0]["target"] == "single-row: gateway/peer throughput"


def test_parts_reads_each_stage_and_the_audit_batches_under_load(tmp_path: Path) -> None:
    _require("wrk", "wrk")
    _require("nginx", "nginx-light")
    out = tmp_path / "results.json"
    code = main([
        *_tiny_database(),
        "--parts",
        "--scenarios", "single",
        "--duration", "2",
        "--warmup", "1",
        "--connections", "4",
        "--max-requests", "2000",
        "--startup-runs", "0",
        "--results-dir", str(tmp_path),
        "--json", str(out),
    ])
    assert code == 0
    parts = json.loads(out.read_text(encoding="utf-8"))["parts"]["single"]["gateway"]
    assert parts["samples"] > 0 and parts["load_rps"] > 0
    for stage in ("total", "request", "plan", "execute", "normalise", "audit"):
        assert stage in parts["p50_ms"], stage
    assert parts["p50_ms"]["total"] >= parts["p50_ms"]["audit"] > 0
    assert parts["audit_batches"] > 0 and parts["audit_records_per_batch"] >= 1
    assert parts["audit_ms_per_batch"] > 0
    # the loop thread's cost a call and its share of a core, the writer's thread beside it
    assert parts["loop_us_per_call"] > 0 and 0 < parts["loop_busy"] < 2
    assert parts["others_us_per_call"] > 0


def test_pairs_measures_gateway_and_variant_back_to_back_in_alternating_order(
    tmp_path: Path,
) -> None:
    _require("wrk", "wrk")
    _require("nginx", "nginx-light")
    out = tmp_path / "results.json"
    code = main([
        *_tiny_database(),
        "--pairs", "2",
        "--variant-src", str(REPO),
        "--scenarios", "single",
        "--duration", "1",
        "--warmup", "0",
        "--connections", "4",
        "--max-requests", "300",
        "--startup-runs", "0",
        "--results-dir", str(tmp_path),
        "--json", str(out),
    ])
    assert code == 0
    single = json.loads(out.read_text(encoding="utf-8"))["pairs"]["single"]
    pairs = single["pairs"]
    assert [p["first"] for p in pairs] == ["gateway", "variant"]
    for p in pairs:
        assert p["gateway"]["rps"] > 0 and p["variant"]["rps"] > 0
        assert p["ratio"] == pytest.approx(p["variant"]["rps"] / p["gateway"]["rps"])
    assert single["min_ratio"] <= single["median_ratio"] <= single["max_ratio"]
    assert 0 <= single["variant_ahead"] <= 2 and single["median_p99_ratio"] > 0


def test_instructions_counts_a_call_the_same_twice(tmp_path: Path) -> None:
    """bench/instructions.py: the gateway under callgrind, instructions a call counted; the
    same tree counted twice gives the same count, which is what makes it worth having."""
    _require("valgrind", "valgrind")
    from bench.instructions import main as count_instructions

    out = tmp_path / "instructions.json"
    code = count_instructions([
        *_tiny_database(),
        "--calls", "30",
        "--warmup", "20",
        "--variant-src", str(REPO),
        "--json", str(out),
    ])
    assert code == 0
    counted = json.loads(out.read_text(encoding="utf-8"))
    gateway, again = counted["gateway"], counted["variant"]
    assert gateway["calls"] == 30 and gateway["loop_per_call"] > 100_000
    assert gateway["all_per_call"] > gateway["loop_per_call"]  # the audit writer's thread too
    assert again["loop_per_call"] == pytest.approx(gateway["loop_per_call"], rel=0.01)


def test_memtrace_samples_the_gateway_from_inside(tmp_path: Path) -> None:
    """bench/memtrace.py: a few thousand calls, every kind of figure present (no threshold)."""
    _require("wrk", "wrk")
    from bench.memtrace import main as memtrace

    out = tmp_path / "memtrace.json"
    code = memtrace([
        *_tiny_database(),
        "--requests", "2000",
        "--minutes", "1",
        "--interval", "1",
        "--connections", "4",
        "--json", str(out),
    ])
    assert code == 0
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    samples: list[dict[str, Any]] = results["samples"]
    labels = [s["label"] for s in samples]
    for label in ("warm", "end", "before-trim", "after-trim"):
        assert label in labels, labels
    end = samples[labels.index("end")]
    assert end["rss"] > 0 and end["rss_anon"] > 0
    assert end["pymalloc"]["arenas"] > 0 and end["malloc"]["arena"] > 0
    assert end["malloc"]["heaps"], "no malloc arena read from malloc_info"
    audit = [c for c in end["sqlite"]["connections"] if "audit" in c["file"]]
    assert audit and audit[0]["cache"] > 0, end["sqlite"]
    assert "warm-up -> end" in results["report"]
    assert results["bad"] == 0, results["report"]  # sampling inside must not disturb a call


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid``, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _left(groups: set[int]) -> list[tuple[str, int]]:
    """(pid and name, group) of every live process (zombies aside) in ``groups``."""
    out = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        st = _stat(pid)
        if st is not None and st[1] in groups and st[0] != "Z":
            out.append((f"{pid} {_comm(pid)}", st[1]))
    return out


def test_sigterm_under_load_stops_every_process(tmp_path: Path) -> None:
    """SIGTERM to the harness while health-busy runs its two wrk at once, repeated as an
    impatient supervisor would: exit code 130, a message and no traceback, and nothing
    left of the run's process groups or its temporary directory.  No timing threshold:
    the signals go on until the harness has exited."""
    _require("wrk", "wrk")
    _require("nginx", "nginx-light")
    database = f"lc2_bench_smoke_{uuid.uuid4().hex[:8]}"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    argv = [
        sys.executable, str(REPO / "bench" / "run.py"),
        "--rows", "2000", "--database", database, "--drop-after",
        "--scenarios", "health-busy", "--runs", "1", "--warmup", "0", "--startup-runs", "0",
        "--duration", "6", "--connections", "3",  # bounded: 6 s, 3 connections
        "--results-dir", str(tmp_path), "--json", str(tmp_path / "results.json"),
    ]
    groups: set[int] = set()
    with out.open("w") as stdout, err.open("w") as stderr:
        harness = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            start_new_session=True,  # its own group: the test's own process is never hit
        )
    groups.add(harness.pid)

    def record() -> list[int]:
        """Remember the group of every process of the run; the wrk among them."""
        wrk = []
        for pid in tree(harness.pid):
            st = _stat(pid)
            if st is not None:
                groups.add(st[1])
            if _comm(pid) == "wrk":
                wrk.append(pid)
        return wrk

    try:
        wrk: list[int] = []
        deadline = time.monotonic() + 120  # seeding 2,000 rows and three targets
        while len(wrk) < 2 and harness.poll() is None and time.monotonic() < deadline:
            wrk = record()
            time.sleep(0.05)
        assert len(wrk) == 2, f"no two loads running:\n{out.read_text()}\n{err.read_text()}"
        tmp = next(Path(a).parent for a in Path(f"/proc/{wrk[0]}/cmdline").read_text()
                   .split("\0") if a.endswith("lc2-load.lua"))
        deadline = time.monotonic() + 60
        while harness.poll() is None and time.monotonic() < deadline:
            record()
            os.kill(harness.pid, signal.SIGTERM)  # not reaped yet: the pid is still its own
            time.sleep(0.2)
        code = harness.poll()
        survivors = _left(groups)
        stderr_text = err.read_text()
        assert code == 130, f"exit code {code}\n{stderr_text}"
        assert not survivors, f"left running: {survivors}"
        assert "interrupted" in stderr_text and "Traceback" not in stderr_text, stderr_text
        assert not tmp.exists(), f"{tmp} left behind"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        for group in {g for _, g in _left(groups)}:  # leave nothing behind, even on failure
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        asyncio.run(drop_database(DEFAULT_DSN, database))


async def test_peer_checks_what_a_hand_written_provider_must() -> None:
    """The peer is a fair reference only if it refuses what an LC2 provider has to refuse."""
    import httpx

    from bench.peer import build_app
    from bench.suite import LC2_HEADERS

    good = "?personalId=1101700203450"
    transport = httpx.ASGITransport(app=build_app(None, 1, None))  # sandbox: no database
    async with httpx.AsyncClient(transport=transport, base_url="http://peer") as client:
        ok = await client.get("/api/v1/fisher/sandbox" + good, headers=LC2_HEADERS)
        assert ok.status_code == 200 and len(ok.json()["data"]) == 3
        wrong = dict(LC2_HEADERS, Authorization="Basic " + "eDp5")  # x:y
        assert (await client.get("/api/v1/fisher/sandbox" + good, headers=wrong)).status_code == 401
        for header in ("X-Office-Request", "X-User-Request"):
            partial = {k: v for k, v in LC2_HEADERS.items() if k != header}
            missing = await client.get("/api/v1/fisher/sandbox" + good, headers=partial)
            assert missing.status_code == 400, header
        bad = await client.get(
            "/api/v1/fisher/sandbox?personalId=1101700203451", headers=LC2_HEADERS
        )
        assert bad.status_code == 400 and "check digit" in bad.json()["message"]


_IMPORT_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module("bench." + name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=1).strip().splitlines()[-1])
print("\\n".join(failed))
"""


def test_every_bench_script_imports_against_the_gateway_of_today() -> None:
    # a script the suite never runs still names the gateway's classes: a rename broke one
    modules = sorted(p.stem for p in (REPO / "bench").glob("*.py"))
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *modules],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "", proc.stdout
