"""The scenarios of the benchmark table and the result of one measurement."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "Sample", "Scenario", "by_name"]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    path: str  # request path; ends with "?personalId=" when ``pids`` is set
    pids: str | None  # which citizen-ID file the load draws from
    rows: int | None  # data rows every answer must hold (None: at least one, not checked)
    gateway: str = "gw"  # instance names, see bench.suite
    floor: str = "floor"
    peer: str = "peer"
    ceiling: str = "nginx"
    probe: str | None = None  # measured path, while ``path`` loads the target
    patchable: bool = True  # the variant gateway (--patch, --variant-src) runs it too
    connections: int | None = None  # instead of --connections

    def static_name(self, probe: bool = False) -> str:
        """Static body the ceiling serves in place of this scenario's answer."""
        if self.probe is not None:
            return "health" if probe else "single"
        return "single" if self.name == "single-c1" else self.name


_FISHER = "/api/v1/fisher?personalId="

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("single", "single-row PID lookup, PostgreSQL, 1M citizens", _FISHER, "hit", 1),
    Scenario(
        "single-c1",
        "single-row at 1 connection: latency without queueing",
        _FISHER,
        "hit",
        1,
        connections=1,
    ),
    Scenario("nomatch", "no-match lookup (valid PID, no row)", _FISHER, "miss", 0),
    Scenario(
        "rows10",
        "10-row result: BE dates, cp874, nested address",
        "/api/v1/vessel?personalId=",
        "owners",
        10,
    ),
    Scenario("sandbox", "sandbox (generated rows, no backend)", "/api/v1/fisher/sandbox"
             "?personalId=", "hit", 3),
    Scenario("health", "/health alone", "/health", None, None),
    Scenario(
        "health-busy",
        "/health (2 conns) while single-row load runs",
        _FISHER,
        "hit",
        1,
        probe="/health",
    ),
    Scenario(
        "audit-tmpfs",
        "single-row, audit store on tmpfs (no fsync cost)",
        _FISHER,
        "hit",
        1,
        gateway="gw_tmpfs",
        patchable=False,
    ),
    Scenario(
        "audit-off",
        "single-row, audit switched off",
        _FISHER,
        "hit",
        1,
        gateway="gw_noaudit",
        patchable=False,
    ),
    Scenario(
        "workers2",
        "single-row, 2 workers (floor, peer: 2 processes; nginx: 2 workers)",
        _FISHER,
        "hit",
        1,
        gateway="gw_w2",
        floor="floor2",
        peer="peer2",
        ceiling="nginx2",
        patchable=False,
    ),
    Scenario(
        "sqlite",
        "PID lookup on the demo SQLite backend (joins, TIS-620 bytes)",
        "/api/v1/demo-fisher?personalId=",
        "sqlite",
        None,
    ),
)


def by_name(names: list[str] | None) -> tuple[Scenario, ...]:
    if not names:
        return SCENARIOS
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(s for s in SCENARIOS if s.name in names)


@dataclass(slots=True)
class Sample:
    """One measurement of one target in one scenario and run."""

    scenario: str
    target: str  # floor | peer | gateway | ceiling | variant
    run: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float
    peak_rss_mb: float
    requests: int
    errors: int
    bad_status: int
    capped: bool
    machine_busy: float  # share of all cores busy during the measurement
    load_rps: float = 0.0  # health-busy: the single-row load's own rate
