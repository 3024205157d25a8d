"""Nothing personal or secret leaves: logs, error bodies, health answers, `check` output."""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.sqlite import SqliteAdapter
from gateway.app import build_admin_app, build_app, build_runtime
from gateway.cli import main as cli_main
from gateway.logs import JsonFormatter, setup_logging
from gateway.security.redact import REDACTOR, RedactingFilter, Redactor, looks_like_pid
from tests.conftest import RUN_LOG, RunLog
from tests.support import (
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    MakeClient,
    audit_rows,
    base_config,
    basic,
    fisher_service,
    lc2_headers,
    make_pid,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)

PID = PEOPLE[0]["pid"]
MASKED = f"{PID[0]}-xxxx-xxxxx-x{PID[11]}-{PID[12]}"
ONLY_ENVELOPE = {"responseCode", "message", "messageTh", "requestId", "error"}


class Lines(logging.Handler):
    """What production would write: the redacting filter, then the JSON formatter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RedactingFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def production_log() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("lc2_gateway")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _record(msg: str, *args: object, **fields: Any) -> logging.LogRecord:
    rec = logging.LogRecord("lc2_gateway.test", logging.WARNING, __file__, 1, msg, args, None)
    if fields:
        rec.fields = fields
    return rec


# --- the redacting filter ----------------------------------------------------------------------


def test_citizen_ids_are_masked_in_every_spelling_and_only_real_ones() -> None:
    r = Redactor()
    dashed = f"{PID[0]}-{PID[1:5]}-{PID[5:10]}-{PID[10:12]}-{PID[12]}"
    for text in (PID, dashed, dashed.replace("-", " "), f"pid={PID}&x", f'"{PID}"', f"เลข{PID}"):
        out = r.text(text)
        assert PID not in out.replace("-", "").replace(" ", "") and MASKED in out, text
    wrong = PID[:12] + str((int(PID[12]) + 1) % 10)
    assert r.text(wrong) == wrong  # a 13-digit number that is no citizen ID stays
    assert r.text(f"a{PID}b") == f"a{PID}b"  # inside a hex id: not a standalone number
    assert r.text("12345678901234") == "12345678901234"  # fourteen digits
    assert looks_like_pid(f"id {dashed}") and not looks_like_pid(wrong)


def test_the_filter_covers_message_arguments_traceback_fields_and_secrets() -> None:
    r = Redactor()
    r.add_secrets(["db-password-123", "short"])
    f = RedactingFilter(r)
    rec = _record("lookup %s failed: %s", PID, "auth db-password-123", subject={"pid": [PID]})
    try:
        raise ValueError(f"no row for {PID}")
    except ValueError:
        rec.exc_info = sys.exc_info()
    assert f.filter(rec)
    text = JsonFormatter().format(rec)
    assert PID not in text and "db-password-123" not in text and "[secret]" in text
    assert text.count(MASKED) == 3 and "ValueError" in text
    assert "short" not in r.text("x") and r.text("short") == "short"  # too short to be one
    broken = _record("%d", "not a number")
    assert f.filter(broken) and "unformattable" in broken.getMessage()


def test_setup_logging_redacts_every_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    REDACTOR.add_secrets(["audit-key-from-env-0001"])
    listener = setup_logging("INFO")
    try:
        logging.getLogger("some.library").warning("connect to x with audit-key-from-env-0001")
        logging.getLogger("lc2_gateway.test").info("subject %s", PID)
    finally:
        listener.stop()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [entry["msg"] for entry in lines] == [
        "connect to x with [secret]",
        f"subject {MASKED}",
    ]


def test_the_run_log_check_catches_what_it_must() -> None:
    assert RUN_LOG in logging.getLogger().handlers  # installed for the whole session
    probe = RunLog()
    log = logging.getLogger("lc2_gateway.probe")
    log.addHandler(probe)
    log.propagate = False
    try:
        log.warning("subject %s", PID)  # masked on the way: not a leak
        log.warning("served %s", "สมชาย")  # a name can not be masked: a leak
    finally:
        log.removeHandler(probe)
        log.propagate = True
    assert probe.lines == 2 and len(probe.leaks) == 1
    assert "PEOPLE[0] firstName" in probe.leaks[0] and "สมชาย" not in probe.leaks[0]


# --- error bodies ---------------------------------------------------------------------------------


def _settings_cfg(tmp_path: Path, **services: Any) -> dict[str, Any]:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    all_services = {"fisher": fisher_service("legacy", SQLITE_QUERY), **services}
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, all_services)
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    return cfg


async def test_error_bodies_carry_no_backend_text_trace_or_reason(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    production_log: Lines,
) -> None:
    syntax = fisher_service(
        "legacy",
        "SELECT PID FROM FISHER_REG WHERE PID = :personalId AND nosuchfunc(PID) = 1",
        path="syntax",
    )
    settings = settings_from(_settings_cfg(tmp_path, syntax=syntax))
    client = await aiohttp_client(build_app(build_runtime(settings)))

    # a backend error: 502 with the envelope only; its text goes to the access log
    resp = await client.get("/api/v1/syntax", params={"personalId": PID}, headers=lc2_headers())
    body = await resp.json()
    assert resp.status == 502 and body["responseCode"] == "303" and set(body) == ONLY_ENVELOPE
    assert "nosuchfunc" not in await resp.text()
    assert "nosuchfunc" in production_log.text and body["requestId"] in production_log.text

    # a bad credential: no word about what was wrong
    resp = await client.get(
        "/api/v1/fisher",
        params={"personalId": PID},
        headers=lc2_headers(Authorization=basic(password="nope")),
    )
    assert resp.status == 401 and set(await resp.json()) == ONLY_ENVELOPE

    # an unexpected exception: 500, no trace; the trace is logged with the citizen ID masked.
    # Raised by the (pure) adapter: the compiled pipeline's own calls can not be patched.
    async def explode(*_: Any) -> Any:
        raise RuntimeError(f"mask failed for {PID}")

    monkeypatch.setattr(SqliteAdapter, "fetch", explode)
    resp = await client.get("/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers())
    text = await resp.text()
    assert resp.status == 500 and set(json.loads(text)) == ONLY_ENVELOPE
    assert "Traceback" not in text and "RuntimeError" not in text and PID not in text
    assert "Traceback" in production_log.text and MASKED in production_log.text
    assert PID not in production_log.text

    # a path that echoes a citizen ID in the 404 detail: masked there too
    resp = await client.get(f"/api/v1/person/{PID}", headers=lc2_headers())
    assert resp.status == 404 and PID not in await resp.text() and MASKED in await resp.text()
    await client.close()
    rows = audit_rows(settings.audit.path)
    assert "nosuchfunc" in rows[0]["error"]  # the audit keeps what the client was not told
    assert rows[1]["error"] == "wrong password for 'Linkage Service'"


async def test_a_request_id_shaped_like_a_citizen_id_is_replaced(
    tmp_path: Path, aiohttp_client: MakeClient, production_log: Lines
) -> None:
    settings = settings_from(_settings_cfg(tmp_path))
    client = await aiohttp_client(build_app(build_runtime(settings)))
    other = make_pid("299900011122")
    for given in (other, f"{other[0]}-{other[1:5]}-{other[5:10]}-{other[10:12]}-{other[12]}"):
        resp = await client.get(
            "/api/v1/fisher",
            params={"personalId": PID},
            headers=lc2_headers(**{"X-Request-Id": given}),
        )
        assert resp.status == 200 and resp.headers["X-Request-Id"] != given
    ok = await client.get(
        "/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers(**{"X-Request-Id": "r-1"})
    )
    assert ok.headers["X-Request-Id"] == "r-1"
    await client.close()
    assert other not in str(audit_rows(settings.audit.path))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_health_on_the_lc2_listener_names_trouble_in_a_word(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    cfg = _settings_cfg(
        tmp_path,
        pg=fisher_service("pg", "SELECT 1 WHERE :personalId <> ''", path="pg"),
    )
    cfg["backends"]["pg"] = {
        "type": "postgresql",
        "dsn": f"postgresql://lc2reader@127.0.0.1:{_closed_port()}/legacy",
        "connect_timeout": 1,
        "health": {"interval": 0.2, "timeout": 1},
    }
    rt = build_runtime(settings_from(cfg))
    client = await aiohttp_client(build_app(rt))
    admin = await aiohttp_client(build_admin_app(rt))
    for _ in range(50):
        body = await (await client.get("/health")).json()
        if body["services"]["pg"]["error"]:
            break
        await __import__("asyncio").sleep(0.1)
    assert body["services"]["pg"]["error"] == "unavailable"
    service = await (await client.get("/api/v1/pg/health")).json()
    assert service["error"] == "unavailable" and service["status"] != "up"
    full = await (await admin.get("/health")).json()
    assert full["backends"]["pg"]["error"] not in (None, "unavailable")  # operators see it all


# --- `check` and `openapi` output --------------------------------------------------------------


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def test_check_and_openapi_never_print_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "AUDIT_KEY": TEST_ENV["AUDIT_KEY"],
        "PG_PASSWORD": "pg-secret-password-991",
        "MY_PASSWORD": "my-secret-password-992",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    cfg = _settings_cfg(tmp_path)
    cfg["backends"]["pg"] = {
        "type": "postgresql",
        "dsn": "postgresql://lc2@127.0.0.1:5432/legacy",
        "password": "${PG_PASSWORD}",
    }
    cfg["backends"]["my"] = {
        "type": "mysql",
        "host": "127.0.0.1",
        "user": "lc2",
        "database": "legacy",
        "password": "${MY_PASSWORD}",
    }
    path = _write(tmp_path, cfg)
    for argv in (["check", "-c", str(path)], ["openapi", "-c", str(path)]):
        assert cli_main(argv) == 0
        out = capsys.readouterr()
        for value in secrets.values():
            assert value not in out.out + out.err, argv

    # a broken config: every problem printed, no secret among them
    cfg["backends"]["pg"]["pool_size"] = "many"
    cfg["backends"]["my"]["port"] = "${MY_PASSWORD}"
    cfg["security"] = {"allow_from": ["${MY_PASSWORD}"]}
    cfg["consumers"]["lc2"]["password_hash"] = "${PG_PASSWORD}"
    path = _write(tmp_path, cfg)
    assert cli_main(["check", "-c", str(path)]) == 1
    out = capsys.readouterr()
    assert "pool_size" in out.err and "allow_from" in out.err
    for value in secrets.values():
        assert value not in out.out + out.err

    # a secret written in the file itself is refused without being repeated
    cfg = _settings_cfg(tmp_path)
    cfg["backends"]["pg"] = {
        "type": "postgresql",
        "dsn": "postgresql://lc2@127.0.0.1:5432/legacy",
        "password": "literal-secret-in-file-993",
    }
    path = _write(tmp_path, cfg)
    assert cli_main(["check", "-c", str(path)]) == 1
    out = capsys.readouterr()
    assert "environment" in out.err and "literal-secret-in-file-993" not in out.out + out.err
