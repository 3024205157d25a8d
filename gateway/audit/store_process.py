"""The embedded audit store's statements, run in a process of its own.

Every ``sqlite3`` statement step lets go of the GIL and takes it back.  On the
writer's thread each take-back waits for the event loop's thread to let go
(up to Python's 5 ms switch interval while it serves a burst of calls), so a
batch of some sixteen records spent about two thirds of its time waiting for
the GIL, and calls waited for their commit that long (docs/performance.md,
issue 21's sixth look).  Here the statements run in a child process that
holds the SQLite connection (:class:`~gateway.audit.store_sqlite.SqliteWriterStore`,
unchanged); the writer's thread only sends it requests on a private pipe.

Nothing the writer decides moves: which records go into a batch, a caller's
deadline, fail-closed or fail-open, the probes (writer.py).  A batch is two
round trips, so that records are still taken only once the chain's write lock
is held, as on the thread:

    thread  -> ("append",)                    child takes its turn, BEGIN IMMEDIATE
    thread <-  ("ready", head seq)
    thread  -> ("items", items, deadline)     child links, inserts, commits unless late
    thread <-  ("ok", (new head, free bytes))

If the child ends while a batch's records are with it, the batch may or may
not be in the file.  A new child reads the chain at the batch's last position
and compares the record there with the last one sent: the callers are
answered by what is in the file, so a record is written if and only if its
caller is told it was, as before.

Messages are pickled: the pipe is private to the two processes, and pickle
gives back exactly the values sent (a lone surrogate in a header the caller
sent, a float's every bit), which the chain's hashes depend on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import gateway
from gateway.audit.chain import Head, Segmenter
from gateway.audit.record import CONTENT_COLUMNS, Content
from gateway.audit.store import Deadline, LateCommit, StoreError
from gateway.audit.store_sqlite import KeyMismatch, SqliteStore, SqliteWriterStore

__all__ = ["ProcessStore", "serve"]

log = logging.getLogger("lc2_gateway.audit")

_LENGTH = struct.Struct("<Q")
# not ``-m``: the package imports this module first, and runpy would run it a second time
_CHILD = "from gateway.audit.store_process import main; main()"
# what a record is recognised by when a batch's outcome is looked up (see _committed)
_KEY_COLUMNS = ("ts", "request_id", "path", "status", "latency_ms")


class _Ended(Exception):
    """The child closed its end of the pipe (it ended, or was killed)."""


def _send(pipe: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_LENGTH.pack(len(data)) + data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> Any:
    head = pipe.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise _Ended
    (size,) = _LENGTH.unpack(head)
    data = pipe.read(size)
    if len(data) < size:
        raise _Ended
    return pickle.loads(data)


def _child_env() -> dict[str, str]:
    # the child imports this very package, wherever it was imported from (a wheel, a
    # source tree on PYTHONPATH, a benchmark's copy)
    root = str(Path(gateway.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, path]) if path else root}


class ProcessStore:
    """The writer's store (the ``_Store`` of writer.py) whose statements run in a child.

    Used on the writer's thread only, like the store it stands for.  The child is started
    on first use and again after it ended.
    """

    def __init__(
        self,
        path: Path,
        synchronous: str,
        chain: str,
        segmenter: Segmenter,
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.chain = chain
        self.segmenter = segmenter
        # never opened here: what this process itself needs of the file (free space, a
        # reader for the sealer) is asked of it
        self._local = SqliteWriterStore(path, synchronous, chain, segmenter)
        # the child's command line; tests give one that fails on purpose
        self._command = list(command or [sys.executable, "-c", _CHILD])
        self._proc: subprocess.Popen[bytes] | None = None
        self._fingerprint = ""
        self._free: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # -- the _Store protocol -----------------------------------------------------------

    def open(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._started()

    def append(
        self, take: Callable[[], Sequence[tuple[Content, float]]], in_time: Deadline
    ) -> Head | None:
        proc = self._started()
        try:
            ready = self._exchange(proc, ("append",))
        except StoreError:
            # it ended since the last batch (no records were with it): once more, anew
            proc = self._started()
            ready = self._exchange(proc, ("append",))
        if ready[0] != "ready":
            head, self._free = _outcome(ready)
            return head  # type: ignore[no-any-return]
        items = take()
        try:
            reply = self._exchange(proc, ("items", list(items), in_time.due))
        except StoreError:
            if not items:
                raise
            # the records went to a child that is gone: what is in the file decides
            return self._committed(int(ready[1]) + len(items), items[-1][0])
        head, self._free = _outcome(reply)
        return head  # type: ignore[no-any-return]

    def probe(self, now: str) -> None:
        _outcome(self._exchange(self._started(), ("probe", now)))

    def free_bytes(self) -> int | None:
        """Free space on the audit volume: as the child saw it after the last batch, once;
        else (idle, or after a failure) measured now."""
        free, self._free = self._free, None
        return free if free is not None else self._local.free_bytes()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            _send(proc.stdin, ("close",))
            proc.wait(timeout=30)  # it closes its connection, which may checkpoint
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            _close_pipes(proc)

    def reader(self) -> SqliteStore:
        """A connection of this process for the sealer's thread (WAL reads beside the child)."""
        return self._local.reader()

    # -- the child -----------------------------------------------------------------------

    def _started(self) -> subprocess.Popen[bytes]:
        # A child that ended shows on the pipe (end of file, broken pipe), which _exchange
        # turns into _forget: no waitpid() a batch, which would give the GIL up once more.
        if self._proc is not None:
            return self._proc
        try:
            proc = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_child_env(),
                close_fds=True,
            )
        except OSError as exc:
            raise StoreError(f"audit store {self.path}: can not start its process: {exc}") from exc
        self._proc = proc
        period, tz = self.segmenter.period, self.segmenter.tz.key
        start = (str(self.path), self.synchronous, self.chain, period, tz, self._fingerprint)
        _outcome(self._exchange(proc, ("open", start)))
        return proc

    def _exchange(self, proc: subprocess.Popen[bytes], message: object) -> Any:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, message)
            return _receive(proc.stdout)
        except (OSError, _Ended) as exc:
            self._forget(str(exc) or "it closed the pipe")
            raise StoreError(f"audit store {self.path}: its process ended") from exc

    def _forget(self, why: str) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        log.error("audit store process %d ended (%s); a new one takes over", proc.pid, why)
        proc.kill()
        proc.wait()
        _close_pipes(proc)

    def _committed(self, seq: int, last: Content) -> Head:
        """The head after a batch whose child ended, if the batch is in the file."""
        try:
            head = _outcome(self._exchange(self._started(), ("committed", seq, _key(last))))
        except StoreError:
            # the file can not be read now: the batch is reported as not written, which it
            # may be; say so, with what finds its records if it is
            log.error(
                "audit: a batch ending with request %s (chain %s, record %d) may be in the "
                "store although it is reported as not written",
                last[CONTENT_COLUMNS.index("request_id")],
                self.chain,
                seq,
            )
            raise
        if head is None:
            raise StoreError(
                f"audit store {self.path}: its process ended; the batch was not written"
            )
        return head  # type: ignore[no-any-return]


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            # closing flushes what a failed write left in the buffer: to a dead child
            with contextlib.suppress(OSError):
                pipe.close()


def _key(content: Content) -> tuple[Any, ...]:
    return tuple(content[CONTENT_COLUMNS.index(c)] for c in _KEY_COLUMNS)


def _outcome(reply: tuple[Any, ...]) -> Any:
    if reply[0] == "ok":
        return reply[1]
    kind, text = reply[1], reply[2]
    if kind == "late":
        raise LateCommit(text)
    if kind == "key":
        raise KeyMismatch(text)
    raise StoreError(text)


# -- the child's side --------------------------------------------------------------------


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer the writer's requests until it closes the pipe or says ``close``."""
    store: SqliteWriterStore | None = None
    while True:
        try:
            message = _receive(requests)
        except _Ended:
            break  # the gateway is gone: end, committing nothing more
        op = message[0]
        if op == "close":
            break
        try:
            if op == "open":
                path, synchronous, chain, period, tz, fingerprint = message[1]
                store = SqliteWriterStore(Path(path), synchronous, chain, Segmenter(period, tz))
                store.open(fingerprint)
                result: Any = None
            else:
                assert store is not None, "the first request opens the store"
                result = _handle(store, op, message, requests, replies)
        except LateCommit as exc:
            _send(replies, ("error", "late", str(exc)))
        except KeyMismatch as exc:
            _send(replies, ("error", "key", str(exc)))
        except (StoreError, _Ended) as exc:
            if isinstance(exc, _Ended):
                break  # the gateway went while a batch waited for its records: rolled back
            _send(replies, ("error", "store", str(exc)))
        except Exception as exc:  # a bug must answer, or the writer's thread waits for good
            log.exception("audit store process failed")
            _send(replies, ("error", "store", f"audit store process: {exc!r}"))
        else:
            _send(replies, ("ok", result))
    if store is not None:
        store.close()


def _handle(
    store: SqliteWriterStore, op: str, message: Any, requests: IO[bytes], replies: IO[bytes]
) -> Any:
    if op == "append":
        deadline = Deadline()

        def take() -> list[tuple[Content, float]]:
            # the write lock is held: the thread may now take its records
            _send(replies, ("ready", store.head().seq))
            _, items, due = _receive(requests)
            deadline.due = due
            return list(items)

        head = store.append(take, deadline)
        return head, store.free_bytes()
    if op == "probe":
        store.probe(message[1])
        return None
    if op == "committed":
        return store.find(message[1], dict(zip(_KEY_COLUMNS, message[2], strict=True)))
    raise ValueError(f"unknown request {op!r}")


def main() -> None:
    # The gateway stops it (it says ``close`` once the last batch is in, or its end of the
    # pipe closes): Ctrl-C in a terminal and systemd's SIGTERM to the whole unit must not
    # end it before that last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the replies get a descriptor of their own; anything written to standard output by
    # mistake goes to standard error (the journal) instead of into the pipe
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(level=logging.WARNING, format="lc2-gateway audit store: %(message)s")
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
