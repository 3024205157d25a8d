"""The benchmark harness still runs end to end: a smoke, never a timing test.

A tiny dataset, one run, a few hundred requests per target (each load stops
after 300, within its one second).  Only the shape is checked: every
scenario has its row, audit-off and workers2 included, and every figure is a
sane, non-zero number.  No threshold on any speed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.run import main
from bench.scenarios import SCENARIOS

_TARGETS = ("floor", "gateway", "ceiling")


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
        pytest.fail(f"{tool} is needed by the benchmark harness: apt-get install {package}",
                    pytrace=False)


def test_harness_prints_a_row_for_every_scenario(tmp_path: Path) -> None:
    _require("wrk", "wrk")
    _require("nginx", "nginx-light")
    out = tmp_path / "results.json"
    code = main([
        "--rows", "2000",
        "--database", f"lc2_bench_smoke_{uuid.uuid4().hex[:8]}",
        "--drop-after",
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


def test_memtrace_samples_the_gateway_from_inside(tmp_path: Path) -> None:
    """bench/memtrace.py: a few thousand calls, every kind of figure present (no threshold)."""
    _require("wrk", "wrk")
    from bench.memtrace import main as memtrace

    out = tmp_path / "memtrace.json"
    code = memtrace([
        "--rows", "2000",
        "--database", f"lc2_bench_smoke_{uuid.uuid4().hex[:8]}",
        "--drop-after",
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
