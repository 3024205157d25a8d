"""``lc2-gateway profile`` counts exactly the defects planted in the legacy tables of
tests/legacy_tables.py, through the service ``scaffold`` drafted for each; its limits
(--fail-over), the backend's query_timeout per batch and Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.config.models import ParamConfig
from gateway.params import compile_param
from gateway.profile.scan import ScanQueryError, scan_sql
from gateway.profile.tally import mask_value
from tests.conftest import MysqlServer, PgServer
from tests.gateway_process import CLI, ROOT
from tests.legacy_tables import KINDS, Fixture, fixture_for, load
from tests.support import TEST_ENV
from tests.test_scaffold import draft_of, merge, run, write_config

_KEYS = {  # planted name -> the report's key
    "invalid_checksums": "invalid_checksums",
    "failures": "failures",
    "before_1900": "dates_before_1900",
    "future": "future_dates",
    "born_after_registered": "born_after_registered",
    "missing_codes": "missing_codes",
    "mojibake": "mojibake",
}
_PID_MASK = re.compile(r"\d-xxxx-xxxxx-x\d-\d")


Scaffolded = Callable[..., tuple[Fixture, Path, str]]


@pytest.fixture
def scaffolded(
    pg_server: PgServer,
    mysql_server: MysqlServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Scaffolded:
    """Load a legacy table, scaffold its service and paste it into the config:
    (the table, the config's path, the service's name)."""

    def make(kind: str, **backend_extra: Any) -> tuple[Fixture, Path, str]:
        fx = fixture_for(kind)
        backend = asyncio.run(load(kind, pg_server.dsn, mysql_server, fx))
        path, cfg = write_config(tmp_path, {**backend, **backend_extra})
        _, draft = draft_of(fx, path, capsys)
        merge(path, cfg, draft)
        (service,) = draft["services"]
        return fx, path, service

    return make


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.mark.parametrize("kind", KINDS)
def test_profile_counts_exactly_the_planted_defects(
    kind: str, scaffolded: Scaffolded, capsys: pytest.CaptureFixture[str]
) -> None:
    fx, path, service = scaffolded(kind)
    code, out, err = run(
        ["profile", "-c", str(path), "-s", service, "--all", "--format", "json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    planted = dict(fx.planted)
    assert report["rows"] == planted.pop("rows")
    assert report["rows"] - report["clean_rows"] == planted.pop("unclean")
    assert report["interrupted"] is False and report["scope"] == "all rows"
    citizens = report["citizens"]
    assert citizens["several_spellings"] == planted.pop("several_spellings")
    assert citizens["with_several_rows"] == planted.pop("with_several_rows")
    # each planted defect counted on its field, and nothing anywhere else
    for metric, key in _KEYS.items():
        want = {
            f: n
            for m_f, n in planted.items()
            if m_f.startswith(f"{metric}.")
            for f in [m_f.split(".", 1)[1]]
        }
        got = {f: v[key] for f, v in report["fields"].items() if v[key]}
        assert got == want, metric
    # examples masked: citizen IDs as 1-xxxx-xxxxx-x6-1, never in clear
    for f in report["fields"].values():
        for ex in f["checksum_examples"]:
            assert _PID_MASK.fullmatch(ex), ex
    for pid in fx.served:
        assert pid not in out
    # a planted failure comes with its reason, no value quoted in it
    failed = [f for f in report["fields"].values() if f["failures"]]
    for f in failed:
        assert all(
            "<value>" in r or "out of range" in r or "exist" in r for r in f["failure_reasons"]
        )


def test_reports_as_markdown_and_html_without_external_assets(
    scaffolded: Scaffolded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx, path, service = scaffolded("mariadb-utf8mb4")
    code, md, _ = run(["profile", "-c", str(path), "-s", service, "--all"], capsys)
    assert code == 0
    assert f"{len(fx.rows)} rows (all rows)" in md and "| dateOfBirth |" in md
    assert "alleyDesc: 2 still look like mojibake" in md
    assert "provinceDesc: codes missing from the lookup: 99 (1)" in md
    html_file = tmp_path / "profile.html"
    code, _, _ = run(
        [
            "profile",
            "-c",
            str(path),
            "-s",
            service,
            "--all",
            "--format",
            "html",
            "-o",
            str(html_file),
        ],
        capsys,
    )
    assert code == 0
    page = html_file.read_text(encoding="utf-8")
    assert "<svg" in page and "dateOfBirth" in page
    assert not re.search(r"<(script|link|img)\b|src=|href=", page)


def test_fail_over_limits_exit_non_zero(
    scaffolded: Scaffolded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, service = scaffolded("postgresql")
    base = ["profile", "-c", str(path), "-s", service, "--all", "--format", "json"]
    code, _, err = run(
        [*base, "--fail-over", "invalid_checksums.personalId>1,failures>0.1%"], capsys
    )
    assert code == 1
    assert "invalid_checksums.personalId>1: measured 2" in err and "failures>0.1%" not in err
    code, _, err = run([*base, "--fail-over", "unclean>20%,nulls.dateOfBirth>0"], capsys)
    assert code == 0, err  # 5 of 30 rows are unclean: 16.7%
    code, _, err = run([*base, "--fail-over", "nulls>5"], capsys)
    assert code == 2 and "unknown metric nulls" in err


def test_a_batch_over_query_timeout_stops_with_what_was_read(
    scaffolded: Scaffolded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, service = scaffolded("postgresql", query_timeout=1)
    slow = "SELECT p.* FROM person_be p, pg_sleep(3) s"
    t0 = time.monotonic()
    code, out, err = run(
        ["profile", "-c", str(path), "-s", service, "--all", "--format", "json", "--query", slow],
        capsys,
    )
    assert code == 1 and "BackendTimeout" in err
    assert json.loads(out)["interrupted"] is True
    assert time.monotonic() - t0 < 10  # well within 10x the timeout


def test_ctrl_c_prints_what_was_read(
    scaffolded: Scaffolded, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, service = scaffolded("postgresql")
    endless = "SELECT p.* FROM person_be p CROSS JOIN generate_series(1, 2000000) ctrl_c_test"
    proc = subprocess.Popen(
        [*CLI, "profile", "-c", str(path), "-s", service, "--all", "--format", "json",
         "--query", endless],
        cwd=ROOT, env={**os.environ, **TEST_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip

    async def reading() -> bool:
        conn = await asyncpg.connect(pg_server.dsn)
        try:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ctrl_c_test%' "
                "AND pid <> pg_backend_pid()"
            )
            return bool(found)
        finally:
            await conn.close()

    deadline = time.monotonic() + 60
    while not asyncio.run(reading()):  # the profile is streaming: now Ctrl-C
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["scope"] == "sample"
    assert report["rows"] < 60_000_000


def test_the_scan_lifts_the_citizen_id_predicate() -> None:
    pid = compile_param("personalId", ParamConfig(type="citizen_id"))
    query = (
        "SELECT * FROM T t WHERE t.PID IN (:personalId, :personalId__dashed)\n"
        "   AND t.X = 1 ORDER BY t.REG_NO DESC"
    )
    assert scan_sql(query, [pid]) == "SELECT * FROM T t WHERE 1 = 1\n   AND t.X = 1"
    assert (
        scan_sql("SELECT * FROM T WHERE PID = :personalId", [pid]) == "SELECT * FROM T WHERE 1 = 1"
    )
    with pytest.raises(ScanQueryError, match="--query"):
        scan_sql("SELECT * FROM T WHERE trim(PID) = :personalId", [pid])


def test_masks() -> None:
    assert mask_value("1-2345-67890-12-1") == "1-xxxx-xxxxx-x2-1"
    assert mask_value("นายสมชาย ใจดี") == "น. จ."  # the leading vowel is skipped
    assert mask_value("31/02/2540") == "99/09/9990"
    assert mask_value(b"\xfc\xfd") == "<2 bytes>"


def test_dates_meant_to_be_ahead_are_not_future_defects() -> None:
    from gateway.config.models import FieldConfig
    from gateway.normalise import compile_mapping
    from gateway.profile.tally import Tally, leaves_of

    output = {
        "issueDate": FieldConfig(column="ISSUED", transform=["be_date"]),
        "expiryDate": FieldConfig(column="EXPIRES", transform=["be_date"]),
    }
    tally = Tally(leaves_of(compile_mapping(output, lookups={}, titles=())))
    tally.add(
        [
            {"ISSUED": "26100101", "EXPIRES": "26100101"},
            {"ISSUED": "25670101", "EXPIRES": "25700101"},
        ]
    )
    assert tally.fields["issueDate"].future == 1
    assert tally.fields["expiryDate"].future == 0
    assert tally.clean == 1


def test_progress_on_a_terminal_only(
    scaffolded: Scaffolded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pty

    _, path, service = scaffolded("postgresql")
    argv = [*CLI, "profile", "-c", str(path), "-s", service, "--all", "-o", str(tmp_path / "r.md")]
    env = {**os.environ, **TEST_ENV}
    plain = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and plain.stderr == ""
    leader, follower = pty.openpty()
    with subprocess.Popen(argv, cwd=ROOT, env=env, stderr=follower) as proc:
        os.close(follower)
        assert proc.wait(timeout=60) == 0
    shown = b""
    with contextlib.suppress(OSError):  # the terminal closed with its last reader
        while chunk := os.read(leader, 4096):
            shown += chunk
    os.close(leader)
    assert f"\rprofile {service}: 30 rows".encode() in shown
