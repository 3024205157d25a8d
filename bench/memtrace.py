#!/usr/bin/env python3
"""Where a long run's memory goes: RSS beside Python's, SQLite's and malloc's own counts.

    python bench/memtrace.py                            # 300,000 single-row calls
    python bench/memtrace.py --requests 1000000 --minutes 20 --ref HEAD
    python bench/memtrace.py --tracemalloc 1            # also the Python sites that grow
    python bench/memtrace.py --env MALLOC_ARENA_MAX=2   # an allocator setting, same load

The gateway runs as usual but through this file (``memtrace.py serve -c GW.yaml``,
like ``noaudit.py``), which starts tracemalloc (when asked) before the gateway is
imported and a sampling thread before the gateway's ``main`` runs; the product is
not changed.  Every ``--interval`` seconds the thread appends one JSON line: RSS
(anonymous, file, shared), Python's allocator (``sys._debugmallocstats``: pymalloc
arenas, blocks in use and free), the traced total with ``--tracemalloc``, SQLite's
own ``sqlite3_memory_used`` and each open connection's page cache
(``sqlite3_db_status``) through ctypes on the library ``_sqlite3`` links, and
glibc's ``mallinfo2`` and ``malloc_info`` (every arena: size, free).  With
``--tracemalloc``, a snapshot every ``--snapshot-every`` seconds is compared with
the one taken after the warm-up: the allocation sites that grew.

The load is the soak's: wrk in 5-second chunks on loopback, bounded by
``--requests`` and ``--minutes``.  After it, one sample, then ``malloc_trim(0)``
and one more: what the allocator held free but had not given back.  Snapshots
allocate, so a run with ``--tracemalloc`` moves RSS itself; read RSS from a run
without it.  Without it a sample takes about 30 ms.  The sampler never calls
``gc.get_objects()``: from a second thread it hands out references to objects
other threads are still building (a tuple being filled must have exactly one),
and the gateway then failed calls with ``SystemError`` and SQLite "API misuse"
errors.  SQLite connections are registered as they are opened instead.
The process is stopped by its group id on every exit path, and the temporary
directory is removed; results go to ``bench/results/<timestamp>-memtrace.json``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Sampler", "main", "read_samples", "summarise"]

OUT_ENV = "LC2_MEMTRACE_OUT"  # the JSON lines file; the launcher does nothing without it
INTERVAL_ENV = "LC2_MEMTRACE_INTERVAL"
FRAMES_ENV = "LC2_MEMTRACE_FRAMES"  # tracemalloc frames; 0: no tracemalloc
SNAPSHOT_ENV = "LC2_MEMTRACE_SNAPSHOT_EVERY"
TOP_ENV = "LC2_MEMTRACE_TOP"
MB = 1024 * 1024
_MALLOCSTATS = ("Small", "class", "-----", "Total", "arena map")  # its lines, besides the numbers

# -- inside the gateway's process ---------------------------------------------------------


_MALLINFO = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
             "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO]


def _status_bytes() -> dict[str, int]:
    want = {"VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file",
            "RssShmem": "rss_shmem", "VmHWM": "hwm", "Threads": "threads"}
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in want:
            parts = value.split()
            out[want[key]] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def _sqlite_library() -> str | None:
    """The SQLite the ``_sqlite3`` module uses: a shared library, or the module itself."""
    import _sqlite3

    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "libsqlite3" in fields[5]:
            return fields[5]
    return _sqlite3.__file__


class Connections:
    """The process's SQLite connections, registered by ``sqlite3.connect`` as they open.

    Installed before the gateway is imported; aiosqlite and the stores call
    ``sqlite3.connect`` through the module, so every connection passes here.
    """

    def __init__(self) -> None:
        import sqlite3

        self._lock = threading.Lock()
        self._open: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        original = sqlite3.connect

        class Tracked(sqlite3.Connection):  # a Python subclass can be weakly referenced
            pass

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.setdefault("factory", Tracked)
            conn: sqlite3.Connection = original(*args, **kwargs)
            with contextlib.suppress(TypeError), self._lock:  # a factory without weakrefs
                self._open.add(conn)
            return conn

        sqlite3.connect = connect  # type: ignore[assignment]

    def live(self) -> list[Any]:
        with self._lock:
            return list(self._open)


class Sampler:
    """Reads the process's memory figures; every read is cheap except the snapshot."""

    def __init__(self, frames: int, top: int, scratch: Path, connections: Connections) -> None:
        self.connections = connections
        self.frames = frames
        self.top = top
        self.baseline: dict[str, tuple[int, int]] | None = None
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.libc.mallinfo2.restype = _MallInfo2
        self.libc.fopen.restype = ctypes.c_void_p
        self.libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self.libc.fclose.argtypes = [ctypes.c_void_p]
        self.libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        self.libc.fflush.argtypes = [ctypes.c_void_p]
        self.libc.malloc_trim.argtypes = [ctypes.c_size_t]
        self.sqlite: ctypes.PyDLL | None = None
        path = _sqlite_library()
        with contextlib.suppress(OSError, AttributeError):
            # PyDLL: the GIL is held during each call (see sqlite_figures for which
            # connections are read at all)
            lib = ctypes.PyDLL(path)
            lib.sqlite3_memory_used.restype = ctypes.c_int64
            lib.sqlite3_memory_highwater.restype = ctypes.c_int64
            lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
            lib.sqlite3_db_status.argtypes = [
                ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                ctypes.POINTER(ctypes.c_int), ctypes.c_int,
            ]
            lib.sqlite3_db_filename.restype = ctypes.c_char_p
            lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            self.sqlite = lib
        self.scratch = scratch  # two small files rewritten at every sample
        self.seen: set[int] = set()  # connections open at the last sample

    # glibc --------------------------------------------------------------------------------

    def malloc(self) -> dict[str, Any]:
        info = self.libc.mallinfo2()
        out: dict[str, Any] = {name: int(getattr(info, name)) for name in _MALLINFO}
        path = self.scratch / "malloc_info.xml"
        fp = self.libc.fopen(str(path).encode(), b"w")
        if fp:
            self.libc.malloc_info(0, fp)
            self.libc.fclose(fp)
            root = ET.fromstring(path.read_text())
            heaps = []
            for heap in root.findall("heap"):
                free = sum(int(t.get("size", "0")) for t in heap.findall("total"))
                system = next((int(s.get("size", "0")) for s in heap.findall("system")
                               if s.get("type") == "current"), 0)
                heaps.append({"nr": int(heap.get("nr", "0")), "system": system, "free": free})
            out["heaps"] = heaps
        return out

    def trim(self) -> None:
        self.libc.malloc_trim(0)

    # Python's allocator ---------------------------------------------------------------------

    def pymalloc(self) -> dict[str, int]:
        """The figures of ``sys._debugmallocstats`` (it writes to C stderr: fd 2 is borrowed)."""
        names = {
            "# arenas allocated current": "arenas",
            "# arenas highwater mark": "arenas_highwater",
            "# bytes in allocated blocks": "allocated",
            "# bytes in available blocks": "available",
        }
        capture = self.scratch / "pymalloc.txt"
        saved = os.dup(2)
        try:
            with capture.open("wb") as f:
                self.libc.fflush(None)
                os.dup2(f.fileno(), 2)
                try:
                    sys._debugmallocstats()
                    self.libc.fflush(None)
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)
        out: dict[str, int] = {}
        others: list[str] = []
        for line in capture.read_text(errors="replace").splitlines():
            key, eq, value = line.partition("=")
            if eq and key.strip() in names:
                out[names[key.strip()]] = int(value.strip().replace(",", ""))
            elif "arenas *" in line and "bytes/arena" in line:
                out["arena_size"] = int(line.split("*", 1)[1].split("bytes", 1)[0])
            elif not line or line[:1] in " #0123456789" or line.startswith(_MALLOCSTATS):
                continue
            else:
                others.append(line)  # somebody else's line, written while fd 2 was borrowed
        if others:
            sys.stderr.write("\n".join(others) + "\n")
        out["arena_bytes"] = out.get("arenas", 0) * out.get("arena_size", 0)
        return out

    # SQLite ----------------------------------------------------------------------------------

    def sqlite_figures(self, conns: Sequence[Any]) -> dict[str, Any]:
        lib = self.sqlite
        if lib is None:
            return {}
        out: dict[str, Any] = {
            "used": int(lib.sqlite3_memory_used()),
            # the most SQLite held at once since the last sample (the count is reset)
            "peak": int(lib.sqlite3_memory_highwater(1)),
        }
        per: list[dict[str, Any]] = []
        cur, hi = ctypes.c_int(), ctypes.c_int()
        # CPython 3.11-3.13 keep ``sqlite3 *db`` right after the object header.  Only
        # connections already open at the last sample are read: a short-lived one (the
        # sealer's) could be closed by its thread between reading ``db`` and using it.
        seen, self.seen = self.seen, {id(c) for c in conns}
        if (3, 11) <= sys.version_info[:2] <= (3, 13):
            for conn in conns:
                if id(conn) not in seen:
                    continue
                db = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
                if not db:
                    continue  # closed
                name = (lib.sqlite3_db_filename(db, b"main") or b"").decode(errors="replace")
                figures: dict[str, Any] = {"file": name, "wal": _size(name + "-wal") if name
                                           else 0}
                # SQLITE_DBSTATUS_CACHE_USED 1, SCHEMA_USED 2, STMT_USED 3
                for name, op in (("cache", 1), ("schema", 2), ("stmt", 3)):
                    lib.sqlite3_db_status(db, op, ctypes.byref(cur), ctypes.byref(hi), 0)
                    figures[name] = cur.value
                per.append(figures)
        out["connections"] = per
        return out

    # tracemalloc ----------------------------------------------------------------------------

    def sites(self) -> dict[str, tuple[int, int]]:
        """Traced bytes and blocks per allocation site (a line, or a traceback)."""
        snap = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, __file__),
        ])
        group = "traceback" if self.frames > 1 else "lineno"
        out: dict[str, tuple[int, int]] = {}
        for stat in snap.statistics(group):
            frames = [f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback]
            out[" < ".join(frames)] = (stat.size, stat.count)
        del snap
        return out

    def growth(self, now: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
        base = self.baseline or {}
        rows: list[dict[str, Any]] = []
        for site, (size, count) in now.items():
            b_size, b_count = base.get(site, (0, 0))
            rows.append({"site": site, "size": size, "size_diff": size - b_size,
                         "count_diff": count - b_count})
        for site, (b_size, b_count) in base.items():
            if site not in now:
                rows.append({"site": site, "size": 0, "size_diff": -b_size,
                             "count_diff": -b_count})
        rows.sort(key=lambda r: -abs(int(r["size_diff"])))
        return rows[: self.top]

    # one sample -------------------------------------------------------------------------------

    def sample(self, label: str = "", snapshot: bool = False) -> dict[str, Any]:
        t0 = time.perf_counter()
        conns = self.connections.live()
        row: dict[str, Any] = {
            "t": time.time(),
            "label": label,
            **_status_bytes(),
            "allocated_blocks": sys.getallocatedblocks(),
            "pymalloc": self.pymalloc(),
            "sqlite": self.sqlite_figures(conns),
            "malloc": self.malloc(),
        }
        del conns
        if tracemalloc.is_tracing():
            row["traced"], row["traced_peak"] = tracemalloc.get_traced_memory()
            row["tracemalloc_overhead"] = tracemalloc.get_tracemalloc_memory()
            if snapshot:
                now = self.sites()
                if self.baseline is None or label == "warm":
                    self.baseline = now
                row["growth"] = self.growth(now)
        row["sample_ms"] = (time.perf_counter() - t0) * 1000
        return row


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _short(filename: str) -> str:
    stdlib = f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/"
    for marker in ("site-packages/", stdlib, "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/tree-", 1)[-1]


def _sample_forever(out: Path, interval: float, snapshot_every: float, sampler: Sampler) -> None:
    """Append a sample every ``interval`` s; obey ``<out>.cmd`` (``mark LABEL`` or ``trim``)."""
    cmd = Path(str(out) + ".cmd")
    next_at = next_snap = time.monotonic()
    while True:
        rows: list[dict[str, Any]] = []
        try:
            with contextlib.suppress(FileNotFoundError):
                words = cmd.read_text().split()
                cmd.unlink()
                if words[:1] == ["mark"] and len(words) > 1:
                    rows.append(sampler.sample(words[1], snapshot=True))
                elif words[:1] == ["trim"]:
                    rows.append(sampler.sample("before-trim"))
                    sampler.trim()
                    rows.append(sampler.sample("after-trim"))
            if time.monotonic() >= next_at:
                snap = time.monotonic() >= next_snap
                rows.append(sampler.sample(snapshot=snap))
                next_at = max(next_at + interval, time.monotonic())  # no backlog of samples
                if snap:
                    next_snap = time.monotonic() + snapshot_every
        except Exception as exc:  # a failed sample is reported, the next one is still taken
            rows.append({"t": time.time(), "label": "", "error": repr(exc)})
        if rows:
            with out.open("a", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        time.sleep(0.2)


def serve(argv: list[str]) -> int:
    """The launcher: sampling thread first, then the gateway's own ``main``."""
    out = os.environ.get(OUT_ENV)
    frames = int(os.environ.get(FRAMES_ENV, "0"))
    if out and frames > 0:
        tracemalloc.start(frames)  # before the gateway is imported: its imports count too
    # before the gateway is imported, and only when sampling: it wraps sqlite3.connect
    connections = Connections() if out else None
    from gateway.cli import main as gateway_main  # the tree on PYTHONPATH

    if out and connections is not None:
        scratch = Path(tempfile.mkdtemp(prefix="memtrace-", dir=Path(out).parent))
        sampler = Sampler(frames, int(os.environ.get(TOP_ENV, "15")), scratch, connections)
        thread = threading.Thread(
            target=_sample_forever,
            args=(Path(out), float(os.environ.get(INTERVAL_ENV, "10")),
                  float(os.environ.get(SNAPSHOT_ENV, "60")), sampler),
            name="memtrace", daemon=True,
        )
        thread.start()
    return gateway_main(argv)


# -- the harness ------------------------------------------------------------------------------


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Every line the sampler wrote (one that failed has only ``t``, ``label``, ``error``)."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                out.append(json.loads(line))
    return out


def _requests_at(t: float, marks: Sequence[tuple[float, int]]) -> float:
    """Requests answered by wall time ``t``, interpolated between the load's chunks."""
    prev_t, prev_n = marks[0]
    for mt, mn in marks[1:]:
        if t <= mt:
            span = mt - prev_t
            return prev_n + (mn - prev_n) * ((t - prev_t) / span if span > 0 else 1.0)
        prev_t, prev_n = mt, mn
    return float(prev_n)


def _figures(s: dict[str, Any]) -> dict[str, float]:
    """One sample as the table's MB columns."""
    m, py, sq = s["malloc"], s["pymalloc"], s.get("sqlite", {})
    conns = sq.get("connections", [])
    audit = [c for c in conns if "audit" in Path(c["file"]).name]
    return {
        "rss": s["rss"] / MB,
        "anon": s["rss_anon"] / MB,
        "file": (s["rss_file"] + s["rss_shmem"]) / MB,
        # sys._debugmallocstats says nothing while tracemalloc wraps the allocator
        "pyarenas": py["arena_bytes"] / MB if "arenas" in py else math.nan,
        "pyused": py["allocated"] / MB if "allocated" in py else math.nan,
        "heap": (m["arena"] + m["hblkhd"]) / MB,
        "inuse": (m["uordblks"] + m["hblkhd"]) / MB,
        "free": m["fordblks"] / MB,
        "sqlite": sq.get("used", 0) / MB,
        "sqlite_peak": sq.get("peak", 0) / MB,
        "cache_audit": sum(c["cache"] for c in audit) / MB,
        "wal_audit": max((c.get("wal", 0) for c in audit), default=0) / MB,  # one file
        "cache_all": sum(c["cache"] for c in conns) / MB,
        "traced": s["traced"] / MB if "traced" in s else math.nan,
        "heaps": float(len(m.get("heaps", []))),
        "threads": float(s.get("threads", 0)),
    }


_COLUMNS = (
    ("rss", "RSS"), ("anon", "anon"), ("file", "file+shm"), ("pyarenas", "pyarena"),
    ("pyused", "pyused"), ("heap", "glibc"), ("inuse", "in use"), ("free", "free"),
    ("sqlite", "sqlite"), ("sqlite_peak", "sq peak"), ("cache_audit", "audit pc"),
    ("cache_all", "all pc"), ("wal_audit", "WAL"), ("traced", "traced"), ("heaps", "arenas"),
    ("threads", "thr"),
)


def _cell(key: str, value: float) -> str:
    if math.isnan(value):
        return f"{'-':>9}"
    return f"{value:>9.0f}" if key in ("heaps", "threads") else f"{value:>9.1f}"


def summarise(samples: Sequence[dict[str, Any]], marks: Sequence[tuple[float, int]],
              every: int = 50_000) -> tuple[str, dict[str, Any]]:
    """The table (a row per ``every`` requests, and each marked sample) and the deltas."""
    errors = [s["error"] for s in samples if "error" in s]
    samples = [s for s in samples if "error" not in s]
    rows: list[tuple[str, dict[str, float]]] = []
    next_row = 0.0
    top = max(samples, key=lambda s: s["rss"]) if samples else None
    for s in samples:
        n = _requests_at(s["t"], marks) if marks else 0.0
        label = s["label"] or ("max RSS" if s is top else "")
        if label or n >= next_row:
            rows.append((f"{n:>10,.0f} {label:<11}", _figures(s)))
            if not s["label"]:
                next_row = (n // every + 1) * every
    head = f"{'requests':>10} {'':<11}" + "".join(f"{title:>9}" for _, title in _COLUMNS)
    lines = ["MB (pyarena/pyused: pymalloc's arenas and blocks in use; glibc: malloc arenas + "
             "mmapped chunks, in use, free; sq peak: SQLite's most since the previous sample; "
             "pc: SQLite page caches; WAL: the audit store's -wal file on disk; arenas: glibc "
             "malloc arenas)", head]
    lines += [label + "".join(_cell(k, f[k]) for k, _ in _COLUMNS) for label, f in rows]
    by_label = {s["label"]: s for s in samples if s["label"]}
    deltas: dict[str, Any] = {}
    if "warm" in by_label and "before-trim" in by_label:
        warm, end = _figures(by_label["warm"]), _figures(by_label["before-trim"])
        change = {k: end[k] - warm[k] for k, _ in _COLUMNS}
        deltas = {k: None if math.isnan(v) else v for k, v in change.items()}
        lines.append("warm-up -> end: " + ", ".join(
            f"{title} {v:+.1f}" for (k, title), v in zip(_COLUMNS, change.values(), strict=True)
            if not math.isnan(v)))
    if "after-trim" in by_label and "before-trim" in by_label:
        before, after = _figures(by_label["before-trim"]), _figures(by_label["after-trim"])
        deltas["trim_rss"] = after["rss"] - before["rss"]
        lines.append(f"malloc_trim(0) at the end: RSS {before['rss']:.1f} -> {after['rss']:.1f} MB"
                     f", glibc free {before['free']:.1f} -> {after['free']:.1f} MB")
    if samples:
        peak = max(s["hwm"] for s in samples) / MB
        lines.append(f"peak RSS (VmHWM) {peak:.1f} MB; the largest sample {top['rss'] / MB:.1f} MB"
                     if top is not None else "")
    last = by_label.get("before-trim") or (samples[-1] if samples else None)
    if last is not None:
        heaps = last["malloc"].get("heaps", [])
        arenas = ", ".join(f"#{h['nr']} {h['system'] / MB:.1f}/{h['free'] / MB:.1f}"
                           for h in heaps)
        lines.append("glibc arenas at the end, size/free MB (#0 the main one, then the newest "
                     f"to the oldest; the oldest is this sampler's): {arenas}")
        conns = last.get("sqlite", {}).get("connections", [])
        lines.append("SQLite connections at the end (page cache / schema / statements KiB): "
                     + ", ".join(f"{Path(c['file']).name or ':memory:'} {c['cache'] // 1024}/"
                                 f"{c['schema'] // 1024}/{c['stmt'] // 1024}" for c in conns))
    if errors:
        lines.append(f"{len(errors)} samples failed, the first: {errors[0]}")
    grown = next((s["growth"] for s in reversed(samples) if s.get("growth")), None)
    if grown:
        lines.append("Python allocation sites, change since the warm-up (tracemalloc):")
        lines += [f"  {g['size_diff'] / 1024:+10.1f} KiB {g['count_diff']:+8d} blocks  "
                  f"{g['site']}" for g in grown]
    return "\n".join(lines), deltas


def _parser() -> Any:
    import argparse

    p = argparse.ArgumentParser(prog="bench/memtrace.py",
                                description=(__doc__ or "").split("\n\n", 1)[0])
    p.add_argument("--requests", type=int, default=300_000, help="count bound (300,000)")
    p.add_argument("--minutes", type=float, default=10.0, help="time bound of the load (10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                   help="trace Python allocations with this many frames (0: off)")
    p.add_argument("--snapshot-every", type=float, default=60.0,
                   help="seconds between tracemalloc snapshots")
    p.add_argument("--top", type=int, default=15, help="allocation sites listed")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set in the gateway's environment (repeatable)")
    p.add_argument("--audit", action="append", default=[], metavar="NAME=VALUE",
                   help="an audit setting of the gateway's config, VALUE as YAML (repeatable): "
                        "seal_period=hour seal_grace=60 seal_interval=30 seals every hour")
    p.add_argument("--verify", action="store_true",
                   help="after the run, `audit verify` the store the gateway wrote (timed)")
    p.add_argument("--ref", help="the gateway of this commit (git archive), not the checkout")
    p.add_argument("--src", type=Path, help="the gateway/ and adapters/ of this directory")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rows", type=int, default=1_000_000, help="citizens in the database")
    p.add_argument("--database", help="benchmark database name (lc2_bench)")
    p.add_argument("--pg-dsn", default=os.environ.get(
        "LC2_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--drop-after", action="store_true", help="drop the database when done")
    p.add_argument("--json", type=Path, help="results file (bench/results/<stamp>-memtrace.json)")
    return p


def _command(out: Path, text: str, samples_before: int, timeout: float = 60.0) -> None:
    """Ask the sampler for a marked sample (or the trim pair) and wait until it is written."""
    Path(str(out) + ".cmd").write_text(text)
    want = samples_before + (2 if text == "trim" else 1)
    deadline = time.monotonic() + timeout
    while len(read_samples(out)) < want and time.monotonic() < deadline:
        time.sleep(0.2)


def _seal_metrics(admin: int) -> list[str]:
    from bench.procs import http_get

    status, _, body = http_get(admin, "/metrics")
    if status != 200:
        return [f"/metrics answered {status}"]
    return [line for line in body.decode().splitlines()
            if line.startswith("lc2_gateway_audit_") and ("seal" in line or "head" in line)]


def _verify(tree: Path, cfg: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """``audit verify`` on the run's store: exit code, time, its own peak RSS, its end."""
    import subprocess

    t0 = time.monotonic()
    with subprocess.Popen([sys.executable, "-m", "gateway", "audit", "verify", "-c", str(cfg)],
                          cwd=tree, env=dict(env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as child:
        assert child.stdout is not None
        output = child.stdout.read()
        # wait4, not wait: the rusage of this child alone (peak RSS in KiB on Linux)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    tail = "\n".join(f"  {ln}" for ln in output.strip().splitlines()[-8:])
    return {"exit": child.returncode, "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
            "tail": tail}


def _load_loop(session: Any, port: int, out: Path, requests: int, seconds: float,
               log: Callable[[str], None]) -> tuple[list[tuple[float, int]], int]:
    """The soak's load; returns (wall time, requests so far) after each chunk, and the
    answers that were not 2xx (a tracemalloc snapshot can hold the audit past its timeout)."""
    from bench.load import Load, run_wrk

    marks: list[tuple[float, int]] = [(time.time(), 0)]
    total, bad, t0, warm, marked = 0, 0, time.monotonic(), requests // 10, False
    conns = session.opts.connections
    while total < requests - conns and time.monotonic() - t0 < seconds:
        res = run_wrk(session.script, Load(
            port=port, path="/api/v1/fisher?personalId=", pids=session.pid_files["hit"],
            connections=conns, seconds=5, threads=1,
            max_requests=max(requests - total, 4 * conns),
        ))
        bad += res.bad_status + res.errors
        if res.requests == 0 or bad > max(100, total // 100):
            raise RuntimeError(f"memtrace: {res.requests} answers in the last chunk; {bad} "
                               "bad answers or socket errors in all")
        total += res.requests
        marks.append((time.time(), total))
        if not marked and total >= warm:
            _command(out, "mark warm", len(read_samples(out)))
            marked = True
        last = [s for s in read_samples(out) if "rss" in s][-1:]
        rss = f"RSS {last[0]['rss'] / MB:.1f} MB" if last else ""
        log(f"  {total:>9,} requests  {res.rps:7,.0f} req/s  {rss}"
            + (f"  ({bad} not 2xx so far)" if bad else ""))
    return marks, bad


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import datetime as dt

    from bench import seed
    from bench.procs import free_port, wait_http
    from bench.suite import Options, running
    from bench.targets import REPO, gateway_env, write_config

    opts = Options(rows=args.rows, database=args.database or seed.DEFAULT_DATABASE,
                   server_dsn=args.pg_dsn, ref=args.ref, connections=args.connections)

    try:
        with running(opts, drop_after=args.drop_after) as session:
            tree = args.src.resolve() if args.src else session.main
            out = session.tmp / "memtrace.jsonl"
            results: dict[str, Any] = {"command": "python bench/memtrace.py " + " ".join(
                sys.argv[1:] if argv is None else argv), "tree": str(tree), "ref": args.ref}
            session.prepare_data()
            port, admin = free_port(), free_port()
            store: dict[str, Any] = {"path": str(session.tmp / "audit-memtrace.sqlite"),
                                     "key": "${LC2_BENCH_AUDIT_KEY}"}
            if args.tracemalloc:
                store["commit_timeout"] = 60  # a snapshot holds the GIL for seconds
            for item in args.audit:
                import yaml

                name, _, value = item.partition("=")
                store[name] = yaml.safe_load(value)
            gw_cfg = session.gateway_cfg(port, admin, store)
            cfg = write_config(session.tmp / "memtrace.yaml", gw_cfg)
            env = gateway_env(tree) | {
                OUT_ENV: str(out), INTERVAL_ENV: str(args.interval),
                FRAMES_ENV: str(args.tracemalloc), SNAPSHOT_ENV: str(args.snapshot_every),
                TOP_ENV: str(args.top),
            }
            for item in args.env:
                name, _, value = item.partition("=")
                env[name] = value
            argv_gw = [sys.executable, str(REPO / "bench" / "memtrace.py"), "serve", "-c", str(cfg)]
            proc = session.sup.start("gw_memtrace", argv_gw, env=env, cwd=tree)
            wait_http(proc, admin, "/ready", timeout=60)
            traced = f", tracemalloc {args.tracemalloc} frame(s)" if args.tracemalloc else ""
            session.log(
                f"gateway from {tree} on :{port}, sampling every {args.interval:g} s{traced}"
            )
            marks, bad = _load_loop(session, port, out, args.requests, args.minutes * 60,
                                    session.log)
            _command(out, "mark end", len(read_samples(out)))
            _command(out, "trim", len(read_samples(out)))
            if not proc.alive():
                raise RuntimeError(f"the gateway died:\n{proc.tail()}")
            sealing = _seal_metrics(admin)
            session.sup.stop(proc)
            samples = read_samples(out)
            text, deltas = summarise(samples, marks)
            text += "\naudit sealing at the end (metrics):\n" + "\n".join(
                f"  {line}" for line in sealing)
            if args.verify:
                verified = _verify(tree, cfg, env)
                results["verify"] = verified
                text += (f"\naudit verify: exit {verified['exit']} in {verified['seconds']:.1f} s, "
                         f"peak RSS {verified['peak_rss_mb']:.1f} MB\n" + verified["tail"])
            results["sealing"] = sealing
            if bad:
                text += f"\n{bad} answers were not 2xx; the gateway's log ended:\n{proc.tail(20)}"
            results.update(marks=marks, samples=samples, deltas=deltas, report=text, bad=bad)
    except KeyboardInterrupt:
        return 130
    target = args.json
    if target is None:
        target = REPO / "bench" / "results" / (
            dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-memtrace.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print("\n" + text + f"\n\nresults: {target}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:  # inside the gateway's process: no bench import here
        sys.exit(serve(sys.argv[1:]))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.procs import hold_interrupts

    hold_interrupts()  # as bench/run.py: a late SIGTERM must not turn 130 into a kill
    code = main()
    hold_interrupts(ignore=True)
    sys.exit(code)
