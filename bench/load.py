"""Load with wrk: a Lua script that picks random citizen IDs and sends LC2 headers.

Every load is bounded in time (``-d``) and in count (the script stops a
thread after its share of ``max_requests``).  wrk's own ``done()`` hook
prints the summary and latency percentiles as one JSON line.

Every wrk runs in its own process group and is remembered until it is reaped,
whichever thread started it: :func:`stop_loads` (``Session.close``, and at
interpreter exit for a thread the harness did not wait for) kills those
still running, so no load outlives the harness.
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import kill_group, shielded
from bench.workload import OFFICE, OFFICER, authorization

__all__ = ["LUA", "Load", "Wrk", "WrkResult", "run_wrk", "start_wrk", "stop_loads", "write_script"]

LUA = r"""
-- lc2-gateway benchmark load: random citizen IDs, LC2 headers, JSON summary.
-- args: path-prefix  pid-file|-  max-requests-per-thread  authorization  office  officer
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  prefix = args[1]
  cap = tonumber(args[3])
  pids = {}
  if args[2] ~= "-" then
    for line in io.lines(args[2]) do
      if #line > 0 then pids[#pids + 1] = line end
    end
  end
  n = #pids
  sent = 0
  math.randomseed(7919 * id)
  wrk.headers["Authorization"] = args[4]
  wrk.headers["X-Office-Request"] = args[5]
  wrk.headers["X-User-Request"] = args[6]
  wrk.headers["User-Agent"] = "Linkage Center 2/bench"
end

function request()
  sent = sent + 1
  if sent >= cap then wrk.thread:stop() end
  if n > 0 then
    return wrk.format(nil, prefix .. pids[math.random(n)])
  end
  return wrk.format(nil, prefix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    port: int
    path: str  # with "?personalId=" when pids are given
    pids: Path | None
    connections: int
    seconds: int
    threads: int = 1
    max_requests: int = 5_000_000


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    bad_status: int  # answers outside 2xx/3xx
    capped: bool  # the count bound stopped it before the time bound

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def write_script(directory: Path) -> Path:
    path = directory / "lc2-load.lua"
    path.write_text(LUA.lstrip(), encoding="utf-8")
    return path


_lock = threading.Lock()  # guards _running and _exiting; held over a start and its registration
_running: set[Wrk] = set()
_exiting = False


@dataclass(eq=False)
class Wrk:
    """A started wrk; :meth:`result` waits for it, :meth:`stop` kills it."""

    popen: subprocess.Popen[str]
    load: Load
    per_thread: int
    threads: int
    stopped: bool = field(default=False)  # killed by stop_loads: the harness is exiting

    def result(self) -> WrkResult:
        load = self.load
        try:
            stdout, stderr = self.popen.communicate(timeout=load.seconds + 60)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"wrk still running {load.seconds + 60} s after it began") from None
        finally:
            self.stop()  # already over, or the wait was cut short (Ctrl-C, SIGTERM)
        if self.stopped and threading.current_thread() is not threading.main_thread():
            raise SystemExit  # end this thread quietly (as _thread.exit does): no traceback
        line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
        code = self.popen.returncode
        if code != 0 or line is None:
            raise RuntimeError(f"wrk failed ({code}): {stderr.strip() or stdout}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        return WrkResult(
            requests=int(data["requests"]),
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
            bad_status=int(data["status"]),
            capped=int(data["requests"]) + load.connections >= self.per_thread * self.threads,
        )

    def stop(self) -> None:
        """Kill it if it still runs, reap it, forget it (idempotent, any thread)."""
        if self.popen.returncode is None:
            kill_group(self.popen)
        with _lock:
            _running.discard(self)


def start_wrk(script: Path, load: Load) -> Wrk:
    """Start wrk on ``load`` in its own process group; it is stopped on every exit path."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    threads = max(1, min(load.threads, load.connections))
    per_thread = max(1, math.ceil(load.max_requests / threads))
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{load.connections}",
        f"-d{max(1, load.seconds)}s",
        "--timeout", "10s",
        "-s", str(script),
        f"http://127.0.0.1:{load.port}",
        "--",
        load.path,
        str(load.pids) if load.pids is not None else "-",
        str(per_thread),
        authorization(),
        OFFICE,
        OFFICER,
    ]
    # its own group: a signal meant for the harness (Ctrl-C, kill of the harness's group)
    # does not kill wrk behind its back; the harness stops it itself, by its id
    with shielded(), _lock:
        if _exiting:
            raise RuntimeError("the harness is exiting: no new load")
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started = Wrk(popen, load, per_thread, threads)
        _running.add(started)
    return started


def run_wrk(script: Path, load: Load) -> WrkResult:
    return start_wrk(script, load).result()


def stop_loads() -> None:
    """Kill every wrk still running, whichever thread started it."""
    with _lock:
        running = list(_running)
    for w in running:
        w.stopped = True
        w.stop()


@atexit.register
def _at_exit() -> None:
    # atexit runs after the non-daemon threads are joined: what is left was started
    # by a daemon thread nobody waits for, and must not outlive the harness
    global _exiting
    with _lock:
        _exiting = True
    stop_loads()
