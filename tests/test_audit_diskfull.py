"""A full disk under the audit store: fail closed with 503/501, say so, recover unaided.

The store lives on a real 2 MiB tmpfs.  The gateway runs in its own mount
namespace (``unshare --mount --map-root-user``, which works as root and, on
kernels with unprivileged user namespaces, without root), so the small
filesystem exists only for it and vanishes with it; the test reaches the
same files through ``/proc/<pid>/root``.  Filling the filesystem makes the
next audit commit fail with SQLITE_FULL exactly as a full disk does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from gateway.audit import keys
from tests.audit_support import MOUNT, Calls, cli, fill_disk, served_on_small_disk, sql
from tests.support import PEOPLE, lc2_headers


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_disk_full_fails_closed_and_recovers_by_itself(tmp_path: Path) -> None:
    with served_on_small_disk(tmp_path) as (gw, port, store):
        admin = gw.admin
        api = f"http://127.0.0.1:{port}/api/v1/fisher?personalId={PEOPLE[0]['pid']}"

        def data_call(rid: str) -> tuple[int, dict[str, object]]:
            status, body = _get(api, lc2_headers(**{"X-Request-Id": rid}))
            return status, json.loads(body)

        assert data_call("before")[0] == 200
        filler = fill_disk(store)
        refused: list[str] = []
        for i in range(50):  # at most a few commits still fit in pages SQLite already holds
            rid = f"full-{i}-{uuid.uuid4().hex[:6]}"
            status, body = data_call(rid)
            if status == 503:
                assert body["responseCode"] == "501" and "data" not in body, body
                refused.append(rid)
                break
        assert refused, "the gateway kept answering with a full disk"
        status, raw = _get(f"http://127.0.0.1:{admin}/health")
        health = json.loads(raw)
        assert status == 503 and health["audit"]["status"] == "down"
        assert "full" in str(health["audit"]["error"]).lower()
        _, metrics = _get(f"http://127.0.0.1:{admin}/metrics")
        failures = [
            line
            for line in metrics.decode().splitlines()
            if line.startswith("lc2_gateway_audit_write_failures_total")
        ]
        assert failures and float(failures[0].split()[-1]) >= 1

        filler.unlink()  # space comes back; no call is made until health says so
        deadline = time.monotonic() + 10
        while _get(f"http://127.0.0.1:{admin}/health")[0] != 200:
            assert time.monotonic() < deadline, gw.output()
            time.sleep(0.1)
        assert data_call("after")[0] == 200

        # the trail on the tmpfs: the refused call is not there, the chain is intact
        public = tmp_path / "seal.pub"
        public.write_text(
            keys.public_pem(keys.load_public(tmp_path / "seal.key")), encoding="ascii"
        )
        # (copied out byte for byte: SQLite would resolve the /proc/<pid>/root link to the
        # host's empty directory; the gateway is idle, so store and log are consistent)
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("audit.sqlite", "audit.sqlite-wal"):
            if (store / name).exists():
                shutil.copyfile(store / name, copy / name)
        ids = {r[0] for r in sql(copy / "audit.sqlite", "SELECT request_id FROM audit_log")}
        assert {"before", "after"} <= ids and not ids & set(refused)
        code, out, _ = cli(
            "audit", "verify", "--sqlite", str(copy / "audit.sqlite"), "--public-key", str(public)
        )
        assert code == 0, out


FREED = 768 * 1024  # a modest amount, well under the 4 MiB a WAL grows to between checkpoints
SERVED_AGAIN = 200  # calls in a row answered 200 after the space came back


def _streak(statuses: list[int]) -> int:
    best = run = 0
    for s in statuses:
        run = run + 1 if s == 200 else 0
        best = max(best, run)
    return best


def test_a_small_volume_filled_under_load_serves_again_once_a_little_is_freed(
    tmp_path: Path,
) -> None:
    """Freeing 768 KiB of a full 2 MiB volume is enough: no restart, no larger volume."""
    with served_on_small_disk(tmp_path) as (gw, port, store), Calls(port) as calls:
        deadline = time.monotonic() + 10
        while len(calls.since(0)) < 50:
            assert time.monotonic() < deadline, gw.output()
            time.sleep(0.05)
        filler = fill_disk(store)
        full = time.monotonic()
        while 503 not in calls.since(full):
            assert time.monotonic() < full + 10, "the gateway kept answering with a full disk"
            time.sleep(0.05)
        os.truncate(filler, max(0, filler.stat().st_size - FREED))
        freed = time.monotonic()
        while _streak(calls.since(freed)) < SERVED_AGAIN:
            after = calls.since(freed)
            assert time.monotonic() < freed + 15, (
                f"{len(after)} calls since {FREED // 1024} KiB were freed, "
                f"{after.count(200)} answered 200, longest run {_streak(after)}: "
                f"{gw.output()[-2000:]}"
            )
            time.sleep(0.05)
        first = next(at for at, s in calls.answers if at >= freed and s == 200)
        print(f"served again {first - freed:.2f}s after {FREED // 1024} KiB were freed")
        _, metrics = _get(f"http://127.0.0.1:{gw.admin}/metrics")
        free = [
            float(line.split()[-1])
            for line in metrics.decode().splitlines()
            if line.startswith("lc2_gateway_audit_volume_free_bytes ")
        ]
        assert free and 0 <= free[0] < 2 * 1024 * 1024, free


def test_the_mount_is_private_to_the_gateway(tmp_path: Path) -> None:
    """The tmpfs never shows on the host: nothing to clean up, even after a crash."""
    unshare = shutil.which("unshare")
    assert unshare
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(
        [
            unshare,
            "--mount",
            "--map-root-user",
            "--propagation",
            "private",
            *MOUNT,
            str(mnt),
            "sh",
            "-c",
            'touch "$0/inside"',
            str(mnt),
        ],
        check=True,
    )
    assert not (mnt / "inside").exists()
