"""Helpers for tests: configs built from dicts, LC2 headers, legacy-shaped data."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import fcntl
import os
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.auth import hash_password
from gateway.breaker import Breaker
from gateway.config.build import build_settings
from gateway.config.loader import parse_yaml
from gateway.config.runtime import Settings
from gateway.transforms import check_digit

PASSWORD = "test-password-1234"
# n=2**10 keeps tests fast; production hashes use 2**14 (see gateway.auth)
PASSWORD_HASH = hash_password(PASSWORD, n=2**10)
OFFICE = "00023"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until(predicate: Any) -> None:
    """Poll a condition for at most 3 s."""
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 3 s")


def make_pid(first12: str) -> str:
    return first12 + str(check_digit(first12))


def plain_pid(pid: str) -> str:
    """A citizen ID as a legacy system may show it, without its dashes and spaces."""
    return pid.replace("-", "").replace(" ", "").strip()


def state_of(b: Breaker) -> str:
    """Read through a call: the state changes behind mypy's narrowing."""
    return b.state


OFFICER = make_pid("110170020345")


def basic(user: str = "Linkage Service", password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def lc2_headers(**override: str | None) -> dict[str, str]:
    h: dict[str, str | None] = {
        "Authorization": basic(),
        "X-Office-Request": OFFICE,
        "X-User-Request": OFFICER,
        "User-Agent": "Linkage Center 2/1.0",
    }
    h.update(override)
    return {k: v for k, v in h.items() if v is not None}


# --- a small legacy fisher register, identical in content on every backend ---------


def _person(
    first12: str, form: str, fullname: str, sex: str, birth: str, moo: str
) -> dict[str, Any]:
    pid = make_pid(first12)
    shown = {
        "plain": pid,
        "dashed": f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}",
        "padded": pid.ljust(17),
        "spaced": f"{pid[0]} {pid[1:5]} {pid[5:10]} {pid[10:12]} {pid[12]}",
    }[form]
    return {
        "pid": pid,
        "PID": shown,
        "FULLNAME": fullname,
        "SEX": sex,
        "BIRTH_DATE": birth,
        "MOO": moo,
    }


PEOPLE = [
    _person("174010023456", "dashed", "นายสมชาย  ใจดี", "1", "25270229", "3"),
    _person("383010045712", "padded", "จ.ส.อ.สมศักดิ์  ทองคำ   ", "1", "25120300", "0"),
    _person("321010011890", "spaced", "นางสาวมาลี ศรีสุข", "2", "00000000", ""),
    _person("500000000001", "plain", "ด.ญ.วันเพ็ญ แสงทอง", "2", "25501332", "12"),
]
NO_RECORD_PID = make_pid("199999999999")

EXPECTED = {
    PEOPLE[0]["pid"]: {
        "personalId": PEOPLE[0]["pid"],
        "titleDesc": "นาย",
        "firstName": "สมชาย",
        "lastName": "ใจดี",
        "genderDesc": "ชาย",
        "dateOfBirth": "1984-02-29",
        "address": {"villageNo": 3},
    },
    PEOPLE[1]["pid"]: {
        "personalId": PEOPLE[1]["pid"],
        "titleDesc": "จ.ส.อ.",
        "firstName": "สมศักดิ์",
        "lastName": "ทองคำ",
        "genderDesc": "ชาย",
        "dateOfBirth": "1969-03",
        "address": {"villageNo": None},
    },
    PEOPLE[2]["pid"]: {
        "personalId": PEOPLE[2]["pid"],
        "titleDesc": "นางสาว",
        "firstName": "มาลี",
        "lastName": "ศรีสุข",
        "genderDesc": "หญิง",
        "dateOfBirth": None,
        "address": {"villageNo": None},
    },
    # "25501332" (month 13) is not a date: that field is nulled and counted, the row served
    PEOPLE[3]["pid"]: {
        "personalId": PEOPLE[3]["pid"],
        "titleDesc": "ด.ญ.",
        "firstName": "วันเพ็ญ",
        "lastName": "แสงทอง",
        "genderDesc": "หญิง",
        "dateOfBirth": None,
        "address": {"villageNo": 12},
    },
}

FISHER_OUTPUT: dict[str, Any] = {
    "personalId": {"column": "PID", "transform": ["pid"]},
    "titleDesc": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "title"}]},
    "firstName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "first"}]},
    "lastName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "last"}]},
    "genderDesc": {"column": "SEX", "transform": [{"lookup": "sex"}]},
    "dateOfBirth": {"column": "BIRTH_DATE", "transform": ["be_date"]},
    "address": {
        "fields": {"villageNo": {"column": "MOO", "transform": ["trim", {"null_if": ["0"]}, "int"]}}
    },
}


def fisher_service(backend: str, query: str, **extra: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "backend": backend,
        "path": "fisher",
        "params": {"personalId": {"type": "citizen_id"}},
        "operation": {"query": query},
        "output": copy.deepcopy(FISHER_OUTPUT),
        "sandbox": {"generate": 2},
    }
    svc.update(extra)
    return svc


SQLITE_QUERY = (
    "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG "
    "WHERE REPLACE(REPLACE(TRIM(PID), '-', ''), ' ', '') = :personalId"
)


def make_sqlite_db(path: Path) -> Path:
    """FISHER_REG with TIS-620 bytes in TEXT columns, as an old import leaves them."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE FISHER_REG (PID CHAR(17), FULLNAME VARCHAR(100), SEX CHAR(1), "
            "BIRTH_DATE CHAR(8), MOO VARCHAR(2))"
        )
        for p in PEOPLE:
            db.execute(
                "INSERT INTO FISHER_REG VALUES (?, CAST(? AS TEXT), ?, ?, ?)",
                (p["PID"], p["FULLNAME"].encode("cp874"), p["SEX"], p["BIRTH_DATE"], p["MOO"]),
            )
    db.close()
    return path


def base_config(
    tmp_path: Path, backends: Mapping[str, Any], services: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"enabled": False},
        "consumers": {"lc2": {"username": "Linkage Service", "password_hash": PASSWORD_HASH}},
        "audit": {"path": str(tmp_path / "audit.sqlite"), "key": "${AUDIT_KEY}"},
        "lookups": {"sex": {"1": "ชาย", "2": "หญิง"}},
        "backends": dict(backends),
        "services": dict(services),
    }
    cfg.update(extra)
    return cfg


TEST_ENV = {"AUDIT_KEY": "k" * 32}


def settings_from(
    cfg: Mapping[str, Any], env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Settings:
    text = yaml.safe_dump(dict(cfg), allow_unicode=True, sort_keys=False)
    loaded = parse_yaml(
        text, source="test.yaml", env={**TEST_ENV, **(env or {})}, base_dir=base_dir
    )
    return build_settings(loaded)


def sqlite_backend(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "type": "sqlite",
        "path": str(path),
        "query_timeout": 2,
        "acquire_timeout": 0.5,
        "health": {"interval": 0.2, "timeout": 0.5},
        **extra,
    }


def audit_rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY id")]
    db.close()
    return rows


def store_bytes(path: Path) -> bytes:
    """Every byte of an SQLite store, its write-ahead log included."""
    parts = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


@contextlib.contextmanager
def others_turn(db: Path) -> Iterator[None]:
    """Hold the writers' turn of a SQLite file (gateway/turns.py) as another worker would.

    The ``-writers`` file must already be there: the code under test made it.
    """
    turn = os.open(f"{db}-writers", os.O_RDONLY)
    fcntl.flock(turn, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(turn, fcntl.LOCK_UN)
        os.close(turn)


def assert_sqlite_free(db: Path) -> None:
    """SQLite itself would let a writer in now: whatever waits, waits for the turn."""
    free = sqlite3.connect(db, timeout=0)
    try:
        free.execute("BEGIN IMMEDIATE")
        free.rollback()
    finally:
        free.close()
