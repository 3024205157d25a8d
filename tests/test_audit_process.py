"""The embedded audit store's statements run in a process of their own (store_process.py).

What the writer promises is unchanged (tests/test_audit_writer.py runs against this store);
these tests hold what the second process adds: its statements are off the serving process,
a child that dies takes no answered record with it, and stopping the gateway stops it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.audit import AuditWriter
from gateway.audit.store_process import ProcessStore
from gateway.errors import AuditUnavailable
from tests.audit_child import child_command
from tests.audit_support import call, cli, settings, sql, write_config


async def _writer(config: Path, *, child: str | None = None) -> AuditWriter:
    s = settings(config)
    writer = AuditWriter(s.audit, s.services)
    if child is not None:
        a = s.audit
        writer._store = ProcessStore(
            a.path, a.synchronous, a.instance, writer.segmenter, command=child_command(child)
        )
    await writer.start()
    return writer


def _store(writer: AuditWriter) -> ProcessStore:
    store = writer._store
    assert isinstance(store, ProcessStore)
    return store


def _open_files(pid: int | str) -> set[str]:
    fds = Path(f"/proc/{pid}/fd")
    out = set()
    for fd in fds.iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose here
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _ids(db: Path) -> list[str]:
    return [r[0] for r in sql(db, "SELECT request_id FROM audit_log ORDER BY seq")]


async def test_the_statements_run_outside_the_serving_process(tmp_path: Path) -> None:
    """The serving process holds no connection to the store: every statement (and with it
    every GIL hand-over of ``sqlite3``) is the child's."""
    config = write_config(tmp_path)
    db = tmp_path / "audit.sqlite"
    writer = await _writer(config)
    try:
        for i in range(3):
            await writer.commit(call(time.time(), request_id=f"r{i}"))
        child = _store(writer).pid
        assert child is not None and child != os.getpid()
        await writer.seal_now()  # the sealer's reader (its own connection) is closed after it
        ours = {f for f in _open_files(os.getpid()) if f.startswith(str(db))}
        assert ours == set(), ours
        assert str(db) in _open_files(child)
    finally:
        await writer.close()
    assert _ids(db) == ["r0", "r1", "r2"]
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_a_child_that_dies_before_its_commit_writes_nothing_and_its_callers_are_refused(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "audit.sqlite"
    writer = await _writer(config, child=f"die-before-commit:{tmp_path / 'died'}")
    first = _store(writer).pid
    with pytest.raises(AuditUnavailable):
        await writer.commit(call(time.time(), request_id="before"))  # the child dies with it
    assert (tmp_path / "died").exists(), "the fault did not fire"
    assert not writer.healthy
    # a new child, as the product's, looked the batch up and takes the next one
    await writer.commit(call(time.time(), request_id="after"))
    assert _store(writer).pid != first and writer.healthy
    await writer.close()
    assert _ids(db) == ["after"]
    assert writer.head is not None and writer.head.seq == 1
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_a_child_that_dies_after_its_commit_has_its_callers_told_it_was_written(
    tmp_path: Path,
) -> None:
    """The answer is lost with the child, the records are not: what the file holds decides."""
    config = write_config(tmp_path)
    db = tmp_path / "audit.sqlite"
    writer = await _writer(config, child=f"die-after-commit:{tmp_path / 'died'}")
    first = _store(writer).pid
    await asyncio.gather(*(writer.commit(call(time.time(), request_id=f"k{i}")) for i in range(5)))
    assert (tmp_path / "died").exists(), "the fault did not fire"
    assert _store(writer).pid != first
    assert writer.healthy and writer.head is not None and writer.head.seq == 5
    await writer.commit(call(time.time(), request_id="after"))
    await writer.close()
    assert sorted(_ids(db)[:5]) == [f"k{i}" for i in range(5)] and _ids(db)[5] == "after"
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_a_child_killed_between_batches_costs_no_call(tmp_path: Path) -> None:
    """No record was with it: the next batch goes to a new child, and nobody is refused."""
    config = write_config(tmp_path)
    writer = await _writer(config)
    await writer.commit(call(time.time(), request_id="one"))
    child = _store(writer).pid
    assert child is not None
    os.kill(child, signal.SIGKILL)
    for _ in range(100):
        if not _alive(child):
            break
        await asyncio.sleep(0.02)
    await writer.commit(call(time.time(), request_id="two"))  # not refused
    assert _store(writer).pid not in (None, child) and writer.healthy
    await writer.close()
    assert _ids(tmp_path / "audit.sqlite") == ["one", "two"]
    assert cli("audit", "verify", "-c", str(config))[0] == 0


async def test_the_child_outlives_a_sigterm_meant_for_the_gateway(tmp_path: Path) -> None:
    """systemd stops a unit with SIGTERM to all its processes: the child must stay until
    the gateway has written its last batch and closes it."""
    config = write_config(tmp_path)
    writer = await _writer(config)
    child = _store(writer).pid
    assert child is not None
    os.kill(child, signal.SIGTERM)
    os.kill(child, signal.SIGINT)
    await asyncio.sleep(0.3)
    assert _alive(child)
    await writer.commit(call(time.time(), request_id="last"))
    assert _store(writer).pid == child
    await writer.close()
    for _ in range(100):
        if not _alive(child):
            break
        await asyncio.sleep(0.05)
    assert not _alive(child), "close() left the store's process running"
    assert _ids(tmp_path / "audit.sqlite") == ["last"]


@pytest.mark.parametrize("how", ["SIGKILL", "exit"])
def test_the_child_ends_when_the_gateway_is_gone(tmp_path: Path, how: str) -> None:
    """Killed or ended without closing its writer, the gateway leaves no process behind
    holding the audit file."""
    config = write_config(tmp_path)
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from pathlib import Path
        from tests.audit_support import call, settings
        from gateway.audit import AuditWriter

        async def main():
            s = settings(Path({str(config)!r}))
            w = AuditWriter(s.audit, s.services)
            await w.start()
            await w.commit(call(time.time(), request_id="one"))
            print(w._store.pid, flush=True)
            if {how!r} == "exit":
                os._exit(0)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    ) as proc:
        try:
            assert proc.stdout is not None
            child = int(proc.stdout.readline())
            assert _alive(child)
            if how == "SIGKILL":
                proc.kill()
            proc.wait(timeout=30)
            deadline = time.monotonic() + 10
            while _alive(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(child), "the store's process outlived the gateway"
        finally:
            proc.kill()
    assert _ids(tmp_path / "audit.sqlite") == ["one"]
