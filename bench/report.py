"""Medians, ratios and the printed table.

Absolute figures are medians over runs.  Ratios are computed inside each run
(both sides measured seconds apart) and then the median of those per-run
ratios is shown: on a shared, noisy machine that is the figure to trust.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.scenarios import Sample, Scenario

__all__ = [
    "METRICS",
    "Check",
    "comparisons",
    "medians",
    "peer_checks",
    "ratios",
    "render_checks",
    "render_comparisons",
    "render_table",
    "target_checks",
]

METRICS = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req", "peak_rss_mb")
_TARGET_ORDER = ("floor", "peer", "gateway", "variant", "ceiling")

Summary = dict[str, dict[str, dict[str, float]]]


def _by(samples: Iterable[Sample]) -> dict[tuple[str, str, int], Sample]:
    return {(s.scenario, s.target, s.run): s for s in samples}


def medians(samples: Sequence[Sample]) -> Summary:
    out: Summary = {}
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.scenario, s.target), []).append(s)
    for (scenario, target), group in groups.items():
        row = {m: statistics.median(getattr(g, m) for g in group) for m in METRICS}
        row["runs"] = len(group)
        row["bad"] = sum(g.bad_status + g.errors for g in group)
        row["capped"] = float(any(g.capped for g in group))
        row["machine_busy"] = statistics.median(g.machine_busy for g in group)
        if any(g.load_rps for g in group):
            row["load_rps"] = statistics.median(g.load_rps for g in group)
        out.setdefault(scenario, {})[target] = row
    return out


def _per_run(
    samples: Sequence[Sample],
    left: tuple[str, str],
    right: tuple[str, str],
    fn: Callable[[Sample, Sample], float],
) -> float | None:
    index = _by(samples)
    values = []
    for run in sorted({s.run for s in samples}):
        a, b = index.get((*left, run)), index.get((*right, run))
        if a is not None and b is not None:
            values.append(fn(a, b))
    return statistics.median(values) if values else None


def _rps_ratio(a: Sample, b: Sample) -> float:
    return a.rps / b.rps if b.rps else 0.0


def _p50_delta(a: Sample, b: Sample) -> float:
    return a.p50_ms - b.p50_ms


def ratios(samples: Sequence[Sample]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for scenario in dict.fromkeys(s.scenario for s in samples):
        row: dict[str, float | None] = {
            "gateway/floor": _per_run(
                samples, (scenario, "gateway"), (scenario, "floor"), _rps_ratio
            ),
            "gateway/ceiling": _per_run(
                samples, (scenario, "gateway"), (scenario, "ceiling"), _rps_ratio
            ),
            "p50 gateway-floor ms": _per_run(
                samples, (scenario, "gateway"), (scenario, "floor"), _p50_delta
            ),
            "gateway/peer": _per_run(
                samples, (scenario, "gateway"), (scenario, "peer"), _rps_ratio
            ),
            "p50 gateway-peer ms": _per_run(
                samples, (scenario, "gateway"), (scenario, "peer"), _p50_delta
            ),
        }
        if any(s.scenario == scenario and s.target == "variant" for s in samples):
            row["variant/floor"] = _per_run(
                samples, (scenario, "variant"), (scenario, "floor"), _rps_ratio
            )
            row["variant/peer"] = _per_run(
                samples, (scenario, "variant"), (scenario, "peer"), _rps_ratio
            )
            row["variant/gateway"] = _per_run(
                samples, (scenario, "variant"), (scenario, "gateway"), _rps_ratio
            )
            row["p50 variant-floor ms"] = _per_run(
                samples, (scenario, "variant"), (scenario, "floor"), _p50_delta
            )
        out[scenario] = row
    return out


_COMPARISONS = (
    ("audit on/off: gateway single / audit-off", ("single", "gateway"), ("audit-off", "gateway")),
    ("audit disk/tmpfs: gateway single / audit-tmpfs", ("single", "gateway"),
     ("audit-tmpfs", "gateway")),
    ("workers 2/1: gateway", ("workers2", "gateway"), ("single", "gateway")),
    ("workers 2/1: floor", ("workers2", "floor"), ("single", "floor")),
    ("workers 2/1: peer", ("workers2", "peer"), ("single", "peer")),
    ("sqlite gateway / postgresql gateway", ("sqlite", "gateway"), ("single", "gateway")),
)


def comparisons(samples: Sequence[Sample]) -> dict[str, float | None]:
    return {
        name: _per_run(samples, left, right, _rps_ratio) for name, left, right in _COMPARISONS
    }


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_table(
    scenarios: Sequence[Scenario],
    summary: Summary,
    rat: Mapping[str, Mapping[str, float | None]],
    unavailable: Mapping[str, str],
) -> str:
    variant = any("variant" in t for t in summary.values())
    head = (
        f"{'scenario':<12} {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'peak RSS MB':>11} {'gw/floor':>9} {'gw/peer':>8} {'gw/ceil':>8} "
        f"{'Δp50 ms':>8}" + (f" {'vs gw':>6}" if variant else "")
    )
    lines = [head, "-" * len(head)]
    for s in scenarios:
        if s.name in unavailable:
            lines.append(f"{s.name:<12} {'-':<8} n/a: {unavailable[s.name]}")
            continue
        targets = summary.get(s.name, {})
        first = True
        for target in _TARGET_ORDER:
            row = targets.get(target)
            if row is None:
                continue
            r = rat.get(s.name, {})
            extra = ""
            rates = s.probe is None  # a probe's rate says little; its latency is the point
            if target == "gateway":
                extra = (
                    f" {_num(r.get('gateway/floor') if rates else None, '.2f'):>9} "
                    f"{_num(r.get('gateway/peer') if rates else None, '.2f'):>8} "
                    f"{_num(r.get('gateway/ceiling') if rates else None, '.3f'):>8} "
                    f"{_num(r.get('p50 gateway-floor ms'), '+.2f'):>8}"
                )
            elif target == "variant":
                extra = (
                    f" {_num(r.get('variant/floor') if rates else None, '.2f'):>9} "
                    f"{_num(r.get('variant/peer') if rates else None, '.2f'):>8} {'':>8} "
                    f"{_num(r.get('p50 variant-floor ms'), '+.2f'):>8} "
                    f"{_num(r.get('variant/gateway') if rates else None, '.3f'):>6}"
                )
            flag = (" !" if row["bad"] else "") + (" (count-bound: req/s understated)"
                                                    if row["capped"] else "")
            lines.append(
                f"{s.name if first else '':<12} {target:<8} {row['rps']:>9,.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['cpu_ms_per_req']:>10.3f} "
                f"{row['peak_rss_mb']:>11.1f}{extra}{flag}"
            )
            first = False
    return "\n".join(lines)


def render_comparisons(comp: Mapping[str, float | None]) -> str:
    lines = ["same-run comparisons (median of per-run throughput ratios)"]
    for name, value in comp.items():
        lines.append(f"  {name:<48} {_num(value, '.2f')}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    value: str
    goal: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, object]:
        return {"target": self.name, "value": self.value, "goal": self.goal, "met": self.met}


def target_checks(
    summary: Summary,
    rat: Mapping[str, Mapping[str, float | None]],
    comp: Mapping[str, float | None],
    startup: Mapping[str, float] | None,
    soak: Mapping[str, float] | None,
) -> list[Check]:
    checks: list[Check] = []
    single = rat.get("single", {})
    ratio = single.get("gateway/floor")
    checks.append(Check("single-row: gateway/floor throughput", _num(ratio, ".2f"), ">= 0.85",
                        None if ratio is None else ratio >= 0.85))
    delta = single.get("p50 gateway-floor ms")
    checks.append(Check("single-row: p50 gateway - floor (32 conns)", _num(delta, "+.2f") + " ms",
                        "<= 0.5 ms", None if delta is None else delta <= 0.5))
    delta1 = rat.get("single-c1", {}).get("p50 gateway-floor ms")
    checks.append(Check("single-row: p50 gateway - floor (1 conn)", _num(delta1, "+.2f") + " ms",
                        "<= 0.5 ms", None if delta1 is None else delta1 <= 0.5))
    audit = comp.get("audit on/off: gateway single / audit-off")
    checks.append(Check("audit on/off throughput", _num(audit, ".2f"), ">= 0.90",
                        None if audit is None else audit >= 0.9))
    peaks = [t["gateway"]["peak_rss_mb"] for t in summary.values() if "gateway" in t]
    peak = max(peaks) if peaks else None
    checks.append(Check("peak RSS of one gateway worker (max over scenarios)",
                        _num(peak, ".1f") + " MB", "< 150 MB",
                        None if peak is None else peak < 150))
    if soak is not None:
        growth = soak["growth_mb"]
        checks.append(Check(f"RSS growth after warm-up over {soak['requests']:,.0f} requests",
                            f"{growth:+.1f} MB", "flat (< 5 MB)", growth < 5))
    else:
        checks.append(Check("RSS flat over 1M requests", "not run", "run --soak", None))
    if startup is not None:
        t = startup["services50_s"]
        checks.append(Check(f"start-up to ready, {startup['services']:.0f} services",
                            f"{t:.2f} s", "< 1 s", t < 1.0))
    else:
        checks.append(Check("start-up to ready, 50 services", "not run", "< 1 s", None))
    return checks


def peer_checks(
    rat: Mapping[str, Mapping[str, float | None]], comp: Mapping[str, float | None]
) -> list[Check]:
    """The targets against the hand-written FastAPI provider (bench/peer.py)."""
    single = rat.get("single", {})
    peer, floor = single.get("gateway/peer"), single.get("gateway/floor")
    delta1 = rat.get("single-c1", {}).get("p50 gateway-floor ms")
    workers = comp.get("workers 2/1: gateway")
    return [
        Check("single-row: gateway/peer throughput", _num(peer, ".2f"), ">= 0.8",
              None if peer is None else peer >= 0.8),
        Check("single-row: gateway/floor throughput", _num(floor, ".2f"), ">= 0.5",
              None if floor is None else floor >= 0.5),
        Check("single-row: p50 gateway - floor (1 conn)", _num(delta1, "+.2f") + " ms",
              "<= 0.4 ms", None if delta1 is None else delta1 <= 0.4),
        Check("workers 2/1: gateway throughput", _num(workers, ".2f"), ">= 1.6",
              None if workers is None else workers >= 1.6),
    ]


def render_checks(checks: Sequence[Check], title: str = "issue 6 targets") -> str:
    lines = [title]
    for c in checks:
        met = "not measured" if c.met is None else "met" if c.met else "NOT MET"
        lines.append(f"  {c.name:<52} {c.value:>12}  goal {c.goal:<14} {met}")
    return "\n".join(lines)
