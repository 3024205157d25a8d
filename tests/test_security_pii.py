"""No citizen ID a caller sends, in any spelling and in any place, reaches the audit, the logs or
an error body in clear; bound values leave driver messages in every spelling."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.transforms import check_digit
from tests.gateway_process import CLI, http_get
from tests.live import live_config
from tests.support import TEST_ENV, lc2_headers

_THAI = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
_TO_ASCII = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_RUN = re.compile(r"(?<![0-9])[0-9](?:[-\s]?[0-9]){12}(?![0-9])")


@st.composite
def citizen_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(the 13 digits, as the caller spells them)."""
    body = str(draw(st.integers(1, 8))) + "".join(
        str(d) for d in draw(st.lists(st.integers(0, 9), min_size=11, max_size=11))
    )
    pid = body + str(check_digit(body))
    style = draw(st.sampled_from(["plain", "dashed", "spaced", "anywhere"]))
    if style == "plain":
        spelled = pid
    elif style in ("dashed", "spaced"):
        sep = "-" if style == "dashed" else " "
        spelled = sep.join((pid[0], pid[1:5], pid[5:10], pid[10:12], pid[12]))
    else:
        gaps = draw(st.lists(st.sampled_from(["", "-", " "]), min_size=12, max_size=12))
        spelled = pid[0] + "".join(g + d for g, d in zip(gaps, pid[1:], strict=True))
    if draw(st.booleans()):
        spelled = spelled.translate(_THAI)
    return pid, spelled


def _leaks(pid: str, text: str) -> bool:
    """Whether ``text`` holds ``pid`` in clear, in any spelling (JSON escapes undone)."""
    with contextlib.suppress(ValueError):
        text = text + "\n" + json.dumps(json.loads(text), ensure_ascii=False)
    plain = text.translate(_TO_ASCII)
    return any(re.sub(r"[-\s]", "", m.group(0)) == pid for m in _RUN.finditer(plain))


class _Gateway:
    def __init__(self, port: int, audit: Path, log: Path) -> None:
        self.port, self.audit, self.log = port, audit, log
        self.sent: list[tuple[str, str, str]] = []  # pid, spelling, place

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def call(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, target, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def last_record(self) -> dict[str, Any]:
        db = sqlite3.connect(self.audit)
        db.row_factory = sqlite3.Row
        try:
            return dict(db.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1").fetchone())
        finally:
            db.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Gateway]:
    """The gateway as installed, in its own process, its JSON log lines kept in a file."""
    tmp = tmp_path_factory.mktemp("pii")
    cfg = live_config(tmp)
    cfg["logging"] = {"level": "DEBUG"}
    config = tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    log = tmp / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "-c", str(config)],
            env={**os.environ, **TEST_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        admin = f"http://127.0.0.1:{cfg['admin']['port']}/ready"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            with contextlib.suppress(OSError):
                if http_get(admin)[0] == 200:
                    break
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.1)
        yield _Gateway(cfg["listen"]["port"], Path(cfg["audit"]["path"]), log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


_PLACES = [
    "path",
    "service_path",
    "param_name",
    "param_value",
    "user_agent",
    "request_id",
    "office",
    "subject_value",
    "authorization_user",
]


def _request(place: str, spelled: str) -> tuple[str, str, dict[str, str]]:
    q = urllib.parse.quote
    headers = lc2_headers()
    target = "/api/v1/fisher?personalId=3100600123452"
    if place == "path":
        target = "/api/v1/" + q(spelled)
    elif place == "service_path":
        target = "/api/v1/vessel/" + q(spelled) + "/x"
    elif place == "param_name":
        target += "&" + q(spelled) + "=1"
    elif place == "param_value":
        target += "&note=" + q(spelled)
    elif place == "user_agent":
        headers["User-Agent"] = "Linkage Center 2/1.0 " + spelled
    elif place == "request_id":
        headers["X-Request-Id"] = spelled
    elif place == "office":
        headers["X-Office-Request"] = spelled
    elif place == "subject_value":
        target = "/api/v1/fisher?personalId=" + q(spelled)
    elif place == "authorization_user":
        creds = base64.b64encode(f"{spelled}:wrong".encode()).decode()
        headers["Authorization"] = f"Basic {creds}"
    # http.client sends header values as latin-1: Thai text goes as its UTF-8 bytes
    headers = {k: v.encode().decode("latin-1") for k, v in headers.items()}
    return "GET", target, headers


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(citizen_ids(), st.sampled_from(_PLACES))
def test_no_citizen_id_reaches_audit_logs_or_error_bodies_in_clear(
    gateway: _Gateway, pid_spelled: tuple[str, str], place: str
) -> None:
    pid, spelled = pid_spelled
    gateway.sent.append((pid, spelled, place))
    method, target, headers = _request(place, spelled)
    _, body = gateway.call(method, target, headers)
    record = gateway.last_record()
    assert not _leaks(pid, body), (place, spelled, body)
    for column, value in record.items():
        if column in ("officer", "subject_hash", "row_hash", "prev_hash") or value is None:
            continue
        assert not _leaks(pid, str(value)), (place, spelled, column, value)


def test_no_citizen_id_sent_above_reached_the_logs_in_clear(gateway: _Gateway) -> None:
    """The same calls, in the lines the gateway logged (at debug) while answering them."""
    assert len(gateway.sent) >= 50, "the property test above must run first"
    time.sleep(0.5)  # the log queue is flushed
    lines = gateway.log_lines()
    assert len(lines) >= len(gateway.sent)
    for pid, spelled, place in gateway.sent:
        leaked = [line for line in lines if _leaks(pid, line)]
        assert not leaked, (place, spelled, leaked[:3])


def test_bound_values_leave_driver_messages_in_every_spelling() -> None:
    from gateway.security.redact import redact_values

    pid = "3100600123452"
    dashed = "3-1006-00123-45-2"
    messages = {
        f'invalid input syntax for type integer: "{pid}"': pid,
        f"near '{dashed}' at line 1": pid,
        f"value '{pid}   ' is too long": pid,  # padded CHAR
        "Data too long for 'O\\'Brien  '": "O'Brien",  # MySQL-escaped
        "duplicate key 'O''Brien'": "O'Brien",  # SQL-quoted
        "check failed for value '7'": "7",  # a short value, where it is quoted
        f"cannot bind b'{pid}'": pid.encode(),
    }
    for message, value in messages.items():
        out = redact_values(message, [value])
        assert "<parameter>" in out, (message, out)
        assert not _leaks(pid, out)
        assert "Brien" not in out and "'7'" not in out
    assert redact_values("error at line 7", ["7"]) == "error at line 7"  # unquoted: kept
