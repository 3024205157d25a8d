"""Retention: archive old sealed segments, purge them, and keep everything verifiable."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from gateway.audit import AuditWriter
from tests.audit_support import (
    DAYS,
    PER_DAY,
    TAIL,
    call,
    cli,
    fill_store,
    pid_for,
    settings,
    sql,
    write_config,
)


@pytest.fixture
async def archived(tmp_path: Path) -> Path:
    config = write_config(tmp_path, seal_interval=3600, retention={"keep_days": 90})
    await fill_store(config)
    code, out, err = cli("audit", "archive", "-c", str(config))
    assert code == 0, out + err
    assert f"purged {len(DAYS) * PER_DAY} records" in out
    return config


def _archive(config: Path, day: str) -> Path:
    return config.parent / "audit-archive" / "gw1" / f"{day}.jsonl.gz"


async def test_archived_and_purged_segments_still_verify(archived: Path) -> None:
    db = archived.parent / "audit.sqlite"
    assert sql(db, "SELECT min(seq), count(*) FROM audit_log") == [(len(DAYS) * PER_DAY + 1, TAIL)]
    assert all(_archive(archived, d).exists() for d in DAYS)
    code, out, _ = cli("audit", "verify", "-c", str(archived))
    assert code == 0, out
    assert f"{len(DAYS)} archived" in out
    # the chain goes on after the purge, anchored on the last archived seal
    s = settings(archived)
    w = AuditWriter(s.audit, s.services)
    await w.start()
    await w.commit(call(time.time(), pid=pid_for(7)))
    await w.close()
    assert cli("audit", "verify", "-c", str(archived))[0] == 0
    # running it again archives nothing more: the rest is too young
    code, out, _ = cli("audit", "archive", "-c", str(archived))
    assert code == 0 and "archived" not in out


async def test_an_archive_verifies_on_its_own_with_the_public_key(
    archived: Path, tmp_path: Path
) -> None:
    _, pem, _ = cli("audit", "pubkey", "-c", str(archived))
    pub = tmp_path / "seal.pub"
    pub.write_text(pem, encoding="ascii")  # the comment line before the PEM block is ignored
    code, out, _ = cli(
        "audit", "verify", "--archive", str(_archive(archived, DAYS[1])), "--public-key", str(pub)
    )
    assert code == 0, out


async def test_an_altered_or_missing_archive_is_caught(archived: Path) -> None:
    path = _archive(archived, DAYS[1])
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    row = json.loads(lines[3])
    row[5] = "00999"  # office of one archived record
    lines[3] = json.dumps(row, ensure_ascii=False)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    code, out, _ = cli("audit", "verify", "-c", str(archived))
    assert code == 1
    assert "archive-altered" in out and "modified" in out and f"segment {DAYS[1]}" in out
    path.unlink()
    code, out, _ = cli("audit", "verify", "-c", str(archived))
    assert code == 1 and "archive-missing" in out
    # archives moved to cold storage: check the store alone
    assert cli("audit", "verify", "-c", str(archived), "--no-archives")[0] == 0


async def test_search_reaches_into_archives_when_asked(archived: Path) -> None:
    pid = pid_for(100 + 3)  # looked up on the second day, now archived
    code, out, _ = cli("audit", "who-accessed", pid, "-c", str(archived), "--format", "jsonl")
    assert code == 0 and out == ""
    code, out, _ = cli(
        "audit",
        "who-accessed",
        pid,
        "-c",
        str(archived),
        "--include-archives",
        "--format",
        "jsonl",
    )
    assert code == 0 and len(out.splitlines()) == 1
    code, out, err = cli(
        "audit", "export", "-c", str(archived), "--month", "2025-03", "--include-archives"
    )
    assert code == 0 and f"{len(DAYS) * PER_DAY} record(s)" in err


async def test_a_tampered_segment_is_never_archived_nor_purged(tmp_path: Path) -> None:
    config = write_config(tmp_path, seal_interval=3600, retention={"keep_days": 90})
    await fill_store(config)
    db = tmp_path / "audit.sqlite"
    sql(db, "UPDATE audit_log SET officer = '3100000000001' WHERE seq = 25")  # third day
    code, out, _ = cli("audit", "archive", "-c", str(config))
    assert code == 1 and "modified" in out and "nothing of it was removed" in out
    # the two days before it were archived; the tampered one and after stay in place
    assert sql(db, "SELECT min(seq) FROM audit_log") == [(2 * PER_DAY + 1,)]
    assert not _archive(config, DAYS[2]).exists()
    code, out, _ = cli("audit", "archive", "-c", str(config), "--dry-run", "--keep-days", "1")
    assert code == 1 and "would archive" not in out
