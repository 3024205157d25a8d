"""Child processes of the harness, and what /proc says about them.

Every server is started in its own session (process group) and remembered;
:meth:`Supervisor.stop_all` ends each group by its id (SIGTERM, then SIGKILL
after a grace period), and runs on every exit path, Ctrl-C included.
CPU time comes from ``/proc/<pid>/stat`` (utime + stime, all threads), peak
memory from ``VmHWM`` in ``/proc/<pid>/status``, reset between measurements
by writing 5 to ``/proc/<pid>/clear_refs``.

:func:`interrupts` turns SIGTERM and SIGINT into one KeyboardInterrupt in the
main thread; :func:`shielded` defers it over a block that starts and
registers a child, or that stops them all, so neither is cut in half.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLK_TCK",
    "Proc",
    "Supervisor",
    "cpu_seconds",
    "free_port",
    "hold_interrupts",
    "http_get",
    "interrupts",
    "kill_group",
    "peak_rss_mb",
    "reset_peak",
    "rss_mb",
    "shielded",
    "thread_cpu",
    "tree",
    "wait_http",
]

CLK_TCK = os.sysconf("SC_CLK_TCK")


class _Interrupts:
    depth = 0  # nested interrupts() blocks
    shield = 0  # nested shielded() blocks of the main thread
    pending = False  # a signal came inside a shielded() block
    fired = False  # KeyboardInterrupt raised: the clean-up is under way


def _on_signal(signum: int, frame: object) -> None:
    if _Interrupts.fired:
        return  # a second Ctrl-C or SIGTERM must not cut the clean-up short
    if _Interrupts.shield:
        _Interrupts.pending = True
        return
    _Interrupts.fired = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM and SIGINT raise KeyboardInterrupt once (in the main thread); later ones
    are ignored until the outermost block ends, so the clean-up runs to its end."""
    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue  # ignored by whoever started us (`cmd &` in a script): keep it so
        previous[sig] = signal.signal(sig, _on_signal)
    _Interrupts.depth += 1
    try:
        yield
    finally:
        _Interrupts.depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not _Interrupts.depth:
            _Interrupts.fired = _Interrupts.pending = False


def hold_interrupts(*, ignore: bool = False) -> None:
    """For a program's entry point: the handlers of :func:`interrupts`, never undone, so
    a signal after the first is ignored instead of killing the process.

    ``ignore=True`` once the work is done: SIG_IGN, which the interpreter's teardown
    keeps (it puts SIG_DFL back in place of a Python handler, and a SIGTERM then
    would turn exit code 130 into a kill).
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, signal.SIG_IGN if ignore else _on_signal)
    _Interrupts.depth += 1  # never left: `fired` is not reset


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Defer an interrupt to the end of the block: a child started in it is registered
    before KeyboardInterrupt can unwind past it, and a clean-up in it is not cut short.

    Signal handlers run in the main thread only, so other threads need no shield.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Interrupts.shield += 1
    try:
        yield
    finally:
        _Interrupts.shield -= 1
        if not _Interrupts.shield and _Interrupts.pending and not _Interrupts.fired:
            _Interrupts.pending = False
            _Interrupts.fired = True
            raise KeyboardInterrupt


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)  # same target

    @property
    def pids(self) -> list[int]:
        """Every live process of this target: its roots and all their descendants."""
        out: list[int] = []
        for p in (self.popen, *self.extra):
            out.extend(tree(p.pid))
        return out

    def alive(self) -> bool:
        return all(p.poll() is None for p in (self.popen, *self.extra))

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        count: int = 1,
    ) -> Proc:
        log = self.logdir / f"{name}.log"
        popens: list[subprocess.Popen[bytes]] = []
        # shielded: an interrupt can not fall between a start and its registration
        with shielded(), log.open("ab") as out:
            try:
                for _ in range(count):
                    popens.append(
                        subprocess.Popen(
                            list(argv),
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            env=dict(env) if env is not None else None,
                            cwd=cwd,
                            start_new_session=True,  # its own group: stopped as one, by its id
                        )
                    )
            except BaseException:
                for p in popens:  # the ones started before the failure
                    kill_group(p)
                raise
            proc = Proc(name, popens[0], log, popens[1:])
            self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace: float = 10.0) -> None:
        popens = [proc.popen, *proc.extra]
        for p in popens:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in popens:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            # stray grandchildren (a worker whose master died) share the group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)


def kill_group(popen: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group led by ``popen`` (started with its own session) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root: int) -> list[int]:
    kids = _children()
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
        stack.extend(kids.get(pid, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``, by thread id (py-spy names threads by it)."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb(pids: Sequence[int]) -> float:
    """The largest VmHWM among ``pids`` (one worker's peak, not their sum)."""
    return max((_status_kb(p, "VmHWM") for p in pids), default=0) / 1024


def rss_mb(pids: Sequence[int]) -> float:
    return max((_status_kb(p, "VmRSS") for p in pids), default=0) / 1024


def reset_peak(pids: Sequence[int]) -> bool:
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def free_port(span: int = 1) -> int:
    """A loopback port that is free, with the ``span - 1`` ports above it free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port + span > 65535:
            continue
        ok = True
        for extra in range(1, span):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port + extra))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free loopback port")


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_http(
    proc: Proc, port: int, path: str, timeout: float = 60.0, poll: float = 0.005
) -> float:
    """Seconds until ``GET path`` answers 200; raises if the process dies or time runs out."""
    t0 = time.monotonic()
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _, _ = http_get(port, path, timeout=1.0)
            if status == 200:
                return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{proc.name} not ready on :{port}{path} after {timeout:g}s")
        time.sleep(poll)
