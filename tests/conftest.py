"""Shared fixtures: real database servers, never mocks.

Server addresses come from the environment with local defaults.  An
unreachable server fails the test that needs it (it is never skipped), so a
CI run without PostgreSQL or MariaDB is red, not silently green.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncmy
import asyncpg
import pytest

from tests.http_upstream import Upstream, make_certificate, running_http_upstream

PG_DSN = os.environ.get("LC2_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("LC2_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("LC2_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("LC2_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("LC2_TEST_MYSQL_PASSWORD", "")


INSTALLED = Path(__file__).resolve().parent / "installed"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/installed exercises an installed wheel (.ci/wheel.sh gives it LC2_INSTALLED_BIN):
    it is collected when that is set or when the directory is named, never by a bare run."""
    if collection_path != INSTALLED or os.environ.get("LC2_INSTALLED_BIN"):
        return None
    here = config.invocation_params.dir
    named = [(here / arg.split("::")[0]).resolve() for arg in config.args]
    return not any(p == INSTALLED or INSTALLED in p.parents for p in named)


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class PgServer:
    dsn: str  # DSN of a fresh database created for this test session
    database: str


@dataclass(frozen=True)
class MysqlServer:
    host: str
    port: int
    user: str
    password: str
    database: str


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    name = _unique("lc2gw_test")

    async def admin(sql: str) -> None:
        try:
            conn = await asyncpg.connect(PG_DSN, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(
                f"PostgreSQL not reachable at {PG_DSN} ({exc}); start it or set LC2_TEST_PG_DSN",
                pytrace=False,
            )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    base, _, _ = PG_DSN.rpartition("/")
    yield PgServer(dsn=f"{base}/{name}", database=name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[MysqlServer]:
    name = _unique("lc2gw_test")

    async def admin(sql: str) -> None:
        try:
            conn = await asyncmy.connect(
                host=MYSQL_HOST,
                port=MYSQL_PORT,
                user=MYSQL_USER,
                password=MYSQL_PASSWORD,
                connect_timeout=5,
            )
        except Exception as exc:  # asyncmy raises OperationalError or OSError
            pytest.fail(
                f"MariaDB/MySQL not reachable at {MYSQL_HOST}:{MYSQL_PORT} ({exc}); "
                "start it or set LC2_TEST_MYSQL_HOST/PORT",
                pytrace=False,
            )
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
        finally:
            conn.close()

    asyncio.run(admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield MysqlServer(MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, name)
    asyncio.run(admin(f"DROP DATABASE IF EXISTS `{name}`"))


# --- privacy of the whole run: no seeded citizen ID or name in any log line ----------------
#
# A handler on the root logger sees every record of the gateway's loggers (at DEBUG, for the
# whole session) and of the libraries it runs on, formats it exactly as production writes it
# (the redacting filter, then the JSON formatter) and keeps each line that still holds a
# citizen ID of tests/support.py PEOPLE, in any spelling, or any of their Thai names.  At the
# end of the session any such line fails the run.  aiohttp's access logger is left out: the
# gateway never enables it (its own access log carries no values), only aiohttp's test server.

import copy  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402

from gateway.logs import JsonFormatter  # noqa: E402
from gateway.security.redact import RedactingFilter  # noqa: E402
from tests.support import EXPECTED, PEOPLE  # noqa: E402

_WATCHED = ("lc2_gateway", "gateway", "adapters", "aiohttp.server", "aiohttp.web", "asyncio")


def _forbidden() -> dict[str, str]:
    """Every text that would be personal data in a log, mapped to a label safe to print."""
    out: dict[str, str] = {}
    for i, p in enumerate(PEOPLE):
        pid = p["pid"]
        dashed = f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}"
        for form in (pid, dashed, dashed.replace("-", " ")):
            out[form] = f"PEOPLE[{i}] citizen ID"
        full = " ".join(p["FULLNAME"].split())
        out[full] = f"PEOPLE[{i}] full name"
        # the same name as TIS-620 bytes read through a latin1 column
        out[full.encode("cp874").decode("latin-1")] = f"PEOPLE[{i}] full name (mojibake)"
        person = EXPECTED[pid]
        for key in ("firstName", "lastName"):
            out[str(person[key])] = f"PEOPLE[{i}] {key}"
    return out


class RunLog(logging.Handler):
    """Collects the log lines of the run that leak a seeded person."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._redact = RedactingFilter()
        self._format = JsonFormatter()
        self._labels = _forbidden()
        self._pattern = re.compile(
            "|".join(re.escape(t) for t in sorted(self._labels, key=len, reverse=True))
        )
        self.lines = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(_WATCHED):
            return
        try:
            line = self._format.format(self._redact_copy(record))
        except Exception as exc:  # a record that can not be formatted is reported, not lost
            line = f"(unformattable record from {record.name}: {type(exc).__name__})"
        self.lines += 1
        # names may be split by repeated spaces in a legacy value: compare with spaces collapsed
        found = self._pattern.findall(line) or self._pattern.findall(" ".join(line.split()))
        if found:
            labels = sorted({self._labels[f] for f in found})
            shown = self._pattern.sub(lambda m: f"<{self._labels[m.group(0)]}>", line)
            self.leaks.append(f"{', '.join(labels)}: {shown[:400]}")

    def _redact_copy(self, record: logging.LogRecord) -> logging.LogRecord:
        # a copy: other handlers (pytest's caplog) must see the record as it was emitted
        rec = copy.copy(record)
        self._redact.filter(rec)
        return rec


RUN_LOG = RunLog()


# --- a legacy HTTP upstream behind TLS (the HTTP and SOAP adapter tests) ---------------------


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Path]]:
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    with running_http_upstream(tls=ctx) as up:
        yield up, cert


def pytest_configure(config: pytest.Config) -> None:
    # schemathesis runs as a CLI against a live gateway (test_security_openapi.py); its pytest
    # plugin, loaded by entry point, would wrap the collection and report hooks of every test
    schemathesis_plugin = config.pluginmanager.get_plugin("schemathesis")
    if schemathesis_plugin is not None:
        config.pluginmanager.unregister(schemathesis_plugin)
    logging.getLogger().addHandler(RUN_LOG)
    logging.getLogger("lc2_gateway").setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(RUN_LOG)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
    if not RUN_LOG.leaks:
        if reporter is not None:
            reporter.write_line(
                f"log privacy: {RUN_LOG.lines} log lines of the run checked, "
                "no seeded citizen ID or name in any"
            )
        return
    if reporter is not None:
        reporter.write_sep("=", "log privacy: personal data in the run's log output", red=True)
        for leak in RUN_LOG.leaks[:50]:
            reporter.write_line(leak)
        reporter.write_line(f"{len(RUN_LOG.leaks)} line(s) leak a seeded person")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
