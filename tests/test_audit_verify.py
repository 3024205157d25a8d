"""`lc2-gateway audit verify` on a real SQLite store: clean, then tampered with in every way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import keys
from tests.audit_support import (
    DAYS,
    PER_DAY,
    TAIL,
    TAMPERING,
    cli,
    fill_store,
    sql,
    tamper,
    write_config,
)


@pytest.fixture
async def store(tmp_path: Path) -> Path:
    config = write_config(tmp_path, seal_interval=3600)
    await fill_store(config)
    return config


def _verify(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli("audit", "verify", "-c", str(config), "--json", *extra)
    return code, json.loads(out)


async def test_untouched_store_verifies_clean(store: Path) -> None:
    code, out, err = cli("audit", "verify", "-c", str(store))
    assert code == 0, out + err
    records = len(DAYS) * PER_DAY + TAIL
    assert f"chain gw1: {records} records in {len(DAYS) + 1} segments ({len(DAYS)} sealed" in out
    assert "verify: OK" in out
    code, body = _verify(store, "--verbose")
    assert code == 0 and body["exitCode"] == 0
    assert [f["kind"] for f in body["findings"]] == ["open"]  # today's segment, not sealed yet


@pytest.mark.parametrize("kind", TAMPERING)
async def test_tampering_is_caught_and_located(store: Path, kind: str) -> None:
    db = store.parent / "audit.sqlite"
    expect_kind, segment, text = tamper(kind, lambda q, p: sql(db, q, p))
    code, body = _verify(store)
    assert code == 1, body
    hits = [
        f
        for f in body["findings"]
        if f["kind"] == expect_kind
        and f["severity"] == "error"
        and (segment is None or f["segment"] == segment)
    ]
    assert hits, body["findings"]
    rendered = " | ".join(f"{f['message']} seq {f['seq']} request {f['request_id']}" for f in hits)
    assert text in rendered, rendered
    # the text form names the same place and ends with the verdict
    _, out, _ = cli("audit", "verify", "-c", str(store))
    assert expect_kind in out and "verify: FAILED" in out
    if segment is not None:
        assert f"segment {segment}" in out


async def test_swap_is_reported_as_reorder_not_as_edits(store: Path) -> None:
    db = store.parent / "audit.sqlite"
    tamper("swap-rows", lambda q, p: sql(db, q, p))
    _, body = _verify(store)
    kinds = {f["kind"] for f in body["findings"] if f["severity"] == "error"}
    assert kinds == {"reordered"}, body["findings"]


async def test_a_record_written_around_the_gateway_is_found(store: Path) -> None:
    db = store.parent / "audit.sqlite"
    sql(
        db,
        "INSERT INTO audit_log (ts, request_id, method, path, service, kind, sandbox, params, "
        "status, code, rows, latency_ms) VALUES ('2025-03-04T03:00:00.000+00:00', 'sneaked', "
        "'GET', '/api/v1/fisher', 'fisher', 'data', 0, '{}', 200, '000', 1, 1.0)",
    )
    code, body = _verify(store)
    assert code == 1
    assert any(f["kind"] == "inserted" and f["request_id"] == "sneaked" for f in body["findings"])


async def test_an_auditor_verifies_a_copy_with_the_public_key_only(
    store: Path, tmp_path: Path
) -> None:
    code, pem, _ = cli("audit", "pubkey", "-c", str(store))
    assert code == 0 and "BEGIN PUBLIC KEY" in pem
    pub = tmp_path / "seal.pub"
    pub.write_text(pem.split("\n", 1)[1], encoding="ascii")
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tmp_path / "audit.sqlite", copy)  # the writer checkpointed it on close
    code, out, err = cli("audit", "verify", "--sqlite", str(copy), "--public-key", str(pub))
    assert code == 0, out + err
    # another key does not vouch for these seals
    other = tmp_path / "other.pub"
    other.write_text(keys.public_pem(keys.public_from_seed(b"\1" * 32)), encoding="ascii")
    code, out, _ = cli("audit", "verify", "--sqlite", str(copy), "--public-key", str(other))
    assert code == 1 and "unknown-key" in out and "not trusted" in out


async def test_a_closed_segment_left_unsealed_is_a_warning(tmp_path: Path) -> None:
    from gateway.audit import AuditWriter
    from tests.audit_support import at, call, settings, write_calls

    config = write_config(tmp_path, seal_interval=3600)
    s = settings(config)
    writer = AuditWriter(s.audit, s.services)
    await writer.start()
    await writer.close()  # the sealer ran once, on an empty store
    # written by a writer without a seal key (as if the sealer never ran)
    from dataclasses import replace

    writer = AuditWriter(replace(s.audit, seal_seed=None), s.services)
    await writer.start()
    await write_calls(writer, [call(at("2025-03-03", "10:00") + i) for i in range(3)])
    await writer.close()
    code, out, _ = cli("audit", "verify", "-c", str(config))
    assert code == 3, out
    assert "unsealed" in out and "segment 2025-03-03" in out
    code, out, _ = cli("audit", "seal", "-c", str(config))
    assert code == 0 and "sealed chain gw1 segment 2025-03-03" in out
    assert cli("audit", "verify", "-c", str(config))[0] == 0
