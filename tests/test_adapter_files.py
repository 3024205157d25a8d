"""File adapters (dbf, csv, fixedwidth) on real files: written by the ``dbf`` package
(an independent dBase/FoxPro writer) and by hand in cp874 or UTF-8, loaded into the
indexed store, and reloaded while lookups run."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dbf  # type: ignore[import-untyped, unused-ignore]
import pytest
from pydantic import ValidationError

from adapters._sql import SqlOperation
from adapters.files import (
    CSV,
    DBF,
    FIXED_WIDTH,
    CsvOptions,
    DbfOptions,
    FileAdapter,
    FileOptions,
    FixedWidthOptions,
)
from gateway.adapter import (
    Adapter,
    BackendBusy,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
)
from gateway.app import build_app, build_runtime
from gateway.config.build import load_settings
from gateway.transforms import compile_chain
from tests.files_support import age, write_csv, write_dbf
from tests.support import PEOPLE, basic, lc2_headers, make_pid, plain_pid

LIMITS = BackendLimits(pool_size=2, acquire_timeout=1.0, query_timeout=2.0)
# Checks are driven by the tests (check_now) unless a test wants the real poller.
MANUAL = {"interval": 3600, "settle": 0}


def people_rows() -> list[list[str]]:
    return [[p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"]] for p in PEOPLE]


def _op(query: str, *params: str, max_rows: int = 1000) -> Any:
    return CSV.prepare(None, SqlOperation(query=query, max_rows=max_rows), params)


BY_PID = _op("SELECT * FROM FISHER_REG WHERE PID13 = :pid", "pid")


async def _opened(factory: Any, options: FileOptions, limits: BackendLimits = LIMITS) -> Any:
    adapter: FileAdapter = factory.create("export", options, limits)
    await adapter.open()
    await adapter.check_now()
    return adapter


@pytest.fixture
async def closing() -> AsyncIterator[list[FileAdapter]]:
    adapters: list[FileAdapter] = []
    yield adapters
    for a in adapters:
        await a.close()


def dbf_options(path: Path, **extra: Any) -> DbfOptions:
    return DbfOptions.model_validate(
        {
            "path": path,
            "table": "FISHER_REG",
            "citizen_ids": [{"column": "PID", "as": "PID13"}],
            "reload": MANUAL,
            **extra,
        }
    )


def csv_options(path: Path, **extra: Any) -> CsvOptions:
    return CsvOptions.model_validate(
        {
            "path": path,
            "table": "FISHER_REG",
            "citizen_ids": [{"column": "PID", "as": "PID13"}],
            "reload": MANUAL,
            **extra,
        }
    )


# --- options -------------------------------------------------------------------------


def test_options_validate() -> None:
    with pytest.raises(ValidationError, match="identifier"):
        CsvOptions.model_validate({"path": "x.csv", "table": "bad name"})
    with pytest.raises(ValidationError, match="needs `columns`"):
        CsvOptions.model_validate({"path": "x.csv", "header": False})
    with pytest.raises(ValidationError, match="unknown codec"):
        DbfOptions.model_validate({"path": "x.dbf", "encoding": "tis-999"})
    with pytest.raises(ValidationError, match="same `as`"):
        CsvOptions.model_validate(
            {
                "path": "x.csv",
                "citizen_ids": [{"column": "A", "as": "pid"}, {"column": "B", "as": "PID"}],
            }
        )
    with pytest.raises(ValidationError, match="shorter than the layout"):
        FixedWidthOptions.model_validate(
            {
                "path": "x.txt",
                "columns": [{"name": "A", "start": 1, "width": 10}],
                "record_length": 5,
            }
        )
    with pytest.raises(ValidationError, match=r"unknown key|extra"):
        CsvOptions.model_validate({"path": "x.csv", "indexes": ["A"]})
    opts = DbfOptions.model_validate(
        {"path": "x.dbf", "citizen_ids": [{"column": "PID", "as": "P"}]}
    )
    assert opts.indexed() == ("P",) and opts.encoding == "cp874"
    assert CsvOptions.model_validate({"path": "x.csv"}).encoding == "auto"


async def test_is_an_adapter(tmp_path: Path, closing: list[FileAdapter]) -> None:
    a = await _opened(CSV, csv_options(write_csv(tmp_path / "f.csv", people_rows())))
    closing.append(a)
    assert isinstance(a, Adapter)


# --- dBase / FoxPro ------------------------------------------------------------------


@pytest.mark.parametrize("dbf_type", ["db3", "vfp"])
async def test_dbf_written_by_the_dbf_package(
    tmp_path: Path, dbf_type: str, closing: list[FileAdapter]
) -> None:
    """cp874 text and memo (.dbt for dBase III, .fpt for FoxPro), deleted rows skipped."""
    path = write_dbf(tmp_path / "FISHER.DBF", PEOPLE, dbf_type=dbf_type)
    memo = ".dbt" if dbf_type == "db3" else ".fpt"
    assert {n.rsplit(".", 1)[1].lower() for n in os.listdir(tmp_path)} == {"dbf", memo[1:]}
    a = await _opened(DBF, dbf_options(path))
    closing.append(a)
    for p in PEOPLE:  # each spelling of the PID (dashed, padded, spaced, plain) is found
        rows = await a.fetch(BY_PID, {"pid": p["pid"]})
        assert len(rows) == 1, p
        row = rows[0]
        assert row["FULLNAME"] == p["FULLNAME"].rstrip()  # C fields are space padded
        assert row["PID13"] == p["pid"]
        assert row["BIRTH_DATE"] == p["BIRTH_DATE"]  # 25270229 stays text for be_date
        assert row["NOTE"] == f"ออกใบอนุญาตแล้ว เลขที่ {p['pid'][-4:]}"
    assert await a.fetch(BY_PID, {"pid": make_pid("999999999999")}) == []
    assert a.status()["rows"] == len(PEOPLE)  # the deleted record is not loaded
    await a.probe()


async def test_dbf_types_and_garbage(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = tmp_path / "LICENCE.DBF"
    table = dbf.Table(
        str(path),
        "PID C(13); FEE N(10,2); BOATS N(3,0); ISSUED D; ACTIVE L; REMARK M",
        codepage="cp874",
        dbf_type="vfp",
    )
    table.open(dbf.READ_WRITE)
    table.append(("1740100234561", 1250.5, 2, datetime.date(2024, 2, 29), True, "เรือ ๒ ลำ"))
    table.append(("3830100457123", None, None, None, False, None))
    table.close()
    # A numeric field holding garbage, as a twenty-year-old file may: NULL, counted.
    raw = bytearray(path.read_bytes())
    start = raw.index(b"3830100457123")
    raw[start + 13 : start + 23] = b"  12x.5   "
    path.write_bytes(bytes(raw))
    age(path, path.with_suffix(".FPT"))
    a = await _opened(DBF, dbf_options(path, citizen_ids=[], index=["PID"], table="LIC"))
    closing.append(a)
    op = _op("SELECT * FROM LIC WHERE PID = :pid", "pid")
    first = (await a.fetch(op, {"pid": "1740100234561"}))[0]
    assert first == {
        "PID": "1740100234561",
        "FEE": 1250.5,
        "BOATS": 2,
        "ISSUED": "20240229",
        "ACTIVE": 1,
        "REMARK": "เรือ ๒ ลำ",
    }
    second = (await a.fetch(op, {"pid": "3830100457123"}))[0]
    assert second["FEE"] is None and second["ACTIVE"] == 0 and second["REMARK"] is None
    assert a._current is not None and a._current.report.invalid == 1


async def test_dbf_language_driver_byte_is_considered(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_dbf(tmp_path / "FISHER.DBF", PEOPLE[:1])
    with path.open("r+b") as f:  # as an English FoxPro marks it: Windows ANSI (cp1252)
        f.seek(29)
        f.write(bytes([0x03]))
    age(path)
    trusted = await _opened(DBF, dbf_options(path))
    closing.append(trusted)
    row = (await trusted.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]}))[0]
    assert row["FULLNAME"] == "นายสมชาย  ใจดี"  # decoded as configured (cp874)
    assert trusted._current is not None
    assert any("0x03 says cp1252" in n for n in trusted._current.report.notes)

    ldid = await _opened(DBF, dbf_options(path, encoding="ldid"))
    closing.append(ldid)
    mojibake = (await ldid.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]}))[0]["FULLNAME"]
    assert mojibake != "นายสมชาย  ใจดี"
    assert compile_chain(["cp874"], lookups={}, titles=())(mojibake) == "นายสมชาย  ใจดี"


async def test_truncated_dbf_is_refused(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_dbf(tmp_path / "FISHER.DBF", PEOPLE, deleted=0)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 60)  # cut in the middle of the last record
    age(path)
    a = await _opened(DBF, dbf_options(path))
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="incomplete"):
        await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})
    with pytest.raises(BackendUnavailable, match="incomplete"):
        await a.probe()


async def test_truncated_memo_file_is_refused(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_dbf(tmp_path / "FISHER.DBF", PEOPLE, deleted=0)
    memo = (
        path.with_suffix(".DBT") if path.with_suffix(".DBT").exists() else path.with_suffix(".dbt")
    )
    with memo.open("r+b") as f:
        f.truncate(memo.stat().st_size - 512)  # the last memo block never arrived
    age(path, memo)
    a = await _opened(DBF, dbf_options(path))
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="memo"):
        await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})


# --- CSV -------------------------------------------------------------------------------


async def test_csv_in_cp874_with_legacy_quirks(tmp_path: Path, closing: list[FileAdapter]) -> None:
    thai_digits = "๓-๘๓๐๑-๐๐๔๕๗-๑๒-๓"  # PEOPLE[1]'s PID typed with Thai digits
    rows = [
        *people_rows()[:1],
        [thai_digits, 'จ.ส.อ.สมศักดิ์ "หนุ่ม"  ทองคำ', "1", "25120300", "0"],
        [PEOPLE[2]["PID"], "นางสาวมาลี ศรีสุข, ชาวประมง", "2", "00000000", ""],
        ["", "ไม่มีเลขประจำตัว", "9", "", ""],
    ]
    path = write_csv(tmp_path / "fisher.csv", rows)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"\r\n", b"\r\n\r\n", 1))  # a blank line after the header
    age(path)
    a = await _opened(CSV, csv_options(path))
    closing.append(a)
    r1 = (await a.fetch(BY_PID, {"pid": PEOPLE[1]["pid"]}))[0]
    assert r1["FULLNAME"] == 'จ.ส.อ.สมศักดิ์ "หนุ่ม"  ทองคำ' and r1["PID"] == thai_digits
    r2 = (await a.fetch(BY_PID, {"pid": PEOPLE[2]["pid"]}))[0]
    assert r2["FULLNAME"] == "นางสาวมาลี ศรีสุข, ชาวประมง" and r2["MOO"] == ""
    assert a.status()["rows"] == 4
    assert a._current is not None and a._current.report.encoding == "cp874"


async def test_undecodable_bytes_are_replaced_and_counted(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    path.write_bytes(path.read_bytes().replace("ใจดี".encode("cp874"), b"\xfc\xfd"))
    age(path)
    a = await _opened(CSV, csv_options(path))
    closing.append(a)
    row = (await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]}))[0]
    assert row["FULLNAME"] == "นายสมชาย  \ufffd\ufffd"  # served, not the whole file refused
    assert a._current is not None and a._current.report.replaced == 2


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp874"])
async def test_csv_encodings_give_the_same_rows(
    tmp_path: Path, encoding: str, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows(), encoding=encoding)
    a = await _opened(CSV, csv_options(path))
    closing.append(a)
    rows = await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})
    assert rows[0]["FULLNAME"] == "นายสมชาย  ใจดี"
    assert "PID" in rows[0]  # a BOM is not part of the first column's name
    assert a._current is not None and a._current.report.encoding == encoding


async def test_csv_without_header_and_with_title_lines(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = tmp_path / "f.txt"
    body = "รายงานทะเบียนชาวประมง ณ วันที่ 1/1/2567\n\n" + "\n".join("|".join(r) for r in people_rows())
    path.write_bytes((body + "\n").encode("cp874"))
    age(path)
    opts = csv_options(
        path,
        header=False,
        columns=["PID", "FULLNAME", "SEX", "BIRTH_DATE", "MOO"],
        delimiter="|",
        skip_rows=2,
    )
    a = await _opened(CSV, opts)
    closing.append(a)
    assert (await a.fetch(BY_PID, {"pid": PEOPLE[3]["pid"]}))[0]["MOO"] == "12"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-9], "line break"),  # cut mid-record
        (lambda b: b + b'"unterminated,x\r\n', "line"),
        (lambda b: b + b"1,2\r\n", "2 fields"),
        (lambda b: b"", "empty"),
    ],
)
async def test_broken_csv_is_refused(
    tmp_path: Path, damage: Any, reason: str, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    path.write_bytes(damage(path.read_bytes()))
    age(path)
    a = await _opened(CSV, csv_options(path, reload={**MANUAL, "min_rows": 0}))
    closing.append(a)
    with pytest.raises(BackendUnavailable, match=reason):
        await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})


# --- fixed width -------------------------------------------------------------------------

LAYOUT = [
    {"name": "PID", "start": 1, "width": 17},
    {"name": "FULLNAME", "start": 18, "width": 40},
    {"name": "SEX", "start": 58, "width": 1},
    {"name": "BIRTH_DATE", "start": 59, "width": 8},
    {"name": "MOO", "start": 67, "width": 2},
]


def _fixed_line(p: dict[str, Any], encoding: str, units: str) -> bytes:
    fields = [(p["PID"], 17), (p["FULLNAME"], 40), (p["SEX"], 1), (p["BIRTH_DATE"], 8)]
    fields.append((p["MOO"].rjust(2), 2))
    if units == "bytes":
        return b"".join(v.encode(encoding).ljust(w)[:w] for v, w in fields)
    return "".join(v.ljust(w)[:w] for v, w in fields).encode(encoding)


@pytest.mark.parametrize(("encoding", "units"), [("cp874", "bytes"), ("utf-8-sig", "chars")])
async def test_fixed_width(
    tmp_path: Path, encoding: str, units: str, closing: list[FileAdapter]
) -> None:
    path = tmp_path / "FISHER.TXT"
    head = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    lines = [_fixed_line(p, codec, units) for p in PEOPLE]
    path.write_bytes(head + b"\r\n".join(lines) + b"\r\n")
    age(path)
    opts = FixedWidthOptions.model_validate(
        {
            "path": path,
            "table": "FISHER_REG",
            "columns": LAYOUT,
            "units": units,
            "record_length": 68 if units == "bytes" else None,
            "citizen_ids": [{"column": "PID", "as": "PID13"}],
            "reload": MANUAL,
        }
    )
    a = await _opened(FIXED_WIDTH, opts)
    closing.append(a)
    for p in PEOPLE:
        row = (await a.fetch(BY_PID, {"pid": p["pid"]}))[0]
        assert row["FULLNAME"] == p["FULLNAME"].strip()
        assert row["MOO"] == p["MOO"] and row["BIRTH_DATE"] == p["BIRTH_DATE"]
    assert a._current is not None and a._current.report.encoding == encoding


async def test_fixed_width_record_length_catches_a_changed_layout(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = tmp_path / "F.TXT"
    lines = [_fixed_line(p, "cp874", "bytes") for p in PEOPLE]
    lines[2] = lines[2][:-1]  # one record is a byte short
    path.write_bytes(b"\n".join(lines) + b"\n")
    age(path)
    opts = FixedWidthOptions.model_validate(
        {"path": path, "columns": LAYOUT, "record_length": 68, "index": ["PID"], "reload": MANUAL}
    )
    a = await _opened(FIXED_WIDTH, opts)
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="line 3 is 67 bytes long, not 68"):
        await a.probe()


# --- the store: indexes, timeouts, pool ---------------------------------------------------


async def test_a_query_must_use_an_index(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    a = await _opened(CSV, csv_options(path, index=["SEX"]))
    closing.append(a)
    scan = _op("SELECT * FROM FISHER_REG WHERE REPLACE(PID, '-', '') = :pid", "pid")
    with pytest.raises(BackendError, match="every row of FISHER_REG"):
        await a.fetch(scan, {"pid": PEOPLE[0]["pid"]})
    by_sex = _op("SELECT PID13 FROM FISHER_REG WHERE SEX = :s ORDER BY PID13", "s")
    assert [r["PID13"] for r in await a.fetch(by_sex, {"s": "2"})] == sorted(
        p["pid"] for p in PEOPLE if p["SEX"] == "2"
    )
    small = await _opened(CSV, csv_options(path, allow_scan=True))
    closing.append(small)
    assert len(await small.fetch(scan, {"pid": PEOPLE[0]["pid"]})) == 1


async def test_declared_column_missing_from_the_file(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    a = await _opened(CSV, csv_options(path, index=["LICENCE_NO"]))
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="column LICENCE_NO"):
        await a.probe()


def _slow(rows: int) -> Any:
    """A lookup that keeps SQLite busy for a while (about 0.3 s per million rows)."""
    return _op(
        f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
        "SELECT max(x) AS n, (SELECT FULLNAME FROM FISHER_REG WHERE PID13 = :pid) AS name "
        "FROM c",
        "pid",
    )


SLOW = _slow(50_000_000)


async def test_query_timeout_interrupts_the_lookup(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    limits = BackendLimits(pool_size=1, acquire_timeout=0.5, query_timeout=0.2)
    a = await _opened(CSV, csv_options(path, allow_scan=True), limits)
    closing.append(a)
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout):
        await a.fetch(SLOW, {"pid": PEOPLE[0]["pid"]})
    assert time.monotonic() - t0 < 1.0
    assert len(await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})) == 1  # the pool is fine


async def test_busy_pool(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    limits = BackendLimits(pool_size=1, acquire_timeout=0.1, query_timeout=0.4)
    a = await _opened(CSV, csv_options(path, allow_scan=True), limits)
    closing.append(a)
    slow = asyncio.create_task(a.fetch(SLOW, {"pid": PEOPLE[0]["pid"]}))
    await asyncio.sleep(0.05)
    with pytest.raises(BackendBusy):
        await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})
    assert a.pool_stats().in_use == 1
    with pytest.raises(BackendTimeout):
        await slow


async def test_cancelled_lookup_is_interrupted(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    limits = BackendLimits(pool_size=1, acquire_timeout=1.0, query_timeout=30.0)
    a = await _opened(CSV, csv_options(path, allow_scan=True), limits)
    closing.append(a)
    task = asyncio.create_task(a.fetch(SLOW, {"pid": PEOPLE[0]["pid"]}))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    t0 = time.monotonic()  # the only slot comes back as soon as the statement stops
    assert len(await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})) == 1
    assert time.monotonic() - t0 < 1.0


# --- reloading -------------------------------------------------------------------------------


def _versioned(version: str, n: int) -> list[list[str]]:
    """n people; every value carries the version so a mixed answer can not hide."""
    rows = []
    for i in range(n):
        pid = make_pid(f"1{i:011d}")
        shown = f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}" if i % 2 else pid
        rows.append([shown, f"นาย{version}{i} สกุล{version}", f"G{i % 10}", version])
    return rows


V_HEADER = ("PID", "FULLNAME", "GRP", "VERSION")
BY_GROUP = _op("SELECT PID13, FULLNAME, VERSION FROM FISHER_REG WHERE GRP = :g", "g")


def _encode(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(V_HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("cp874")


async def test_swap_keeps_old_data_for_lookups_in_flight(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", _versioned("A", 20), header=V_HEADER)
    limits = BackendLimits(pool_size=2, acquire_timeout=1.0, query_timeout=30.0)
    a = await _opened(CSV, csv_options(path, allow_scan=True), limits)
    closing.append(a)
    first = a._current
    pid = make_pid("100000000003")
    slow = asyncio.create_task(a.fetch(_slow(2_000_000), {"pid": pid}))
    await asyncio.sleep(0.1)
    path.write_bytes(_encode(_versioned("B", 20)))
    age(path)
    await a.check_now()  # the new version is swapped in while the slow lookup runs
    assert a.status()["generation"] == 2 and first is not None and first.retired
    assert (await a.fetch(BY_PID, {"pid": pid}))[0]["FULLNAME"] == "นายB3 สกุลB"
    assert first._closed is False  # still pinned by the slow lookup
    assert (await slow)[0]["name"] == "นายA3 สกุลA"  # finished on the version it started on
    for _ in range(100):
        if first._closed:
            break
        await asyncio.sleep(0.01)
    assert first._closed and first.open_connections == 0


async def test_refused_versions_keep_the_old_data_and_show_in_health(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = write_csv(tmp_path / "f.csv", _versioned("A", 40), header=V_HEADER)
    a = await _opened(CSV, csv_options(path, index=["GRP"]))
    closing.append(a)
    pid = make_pid("100000000001")

    async def serving() -> str:
        return str((await a.fetch(BY_PID, {"pid": pid}))[0]["FULLNAME"])

    bad_versions = [
        (_encode(_versioned("B", 40))[:-15], "line break"),  # half written
        (_encode(_versioned("C", 10)), "min_ratio"),  # far fewer rows
        (_encode([r[:3] for r in _versioned("D", 40)]).replace(b",VERSION", b""), "gone"),
    ]
    for content, reason in bad_versions:
        path.write_bytes(content)
        age(path)
        await a.check_now()
        assert await serving() == "นายA1 สกุลA"
        with pytest.raises(BackendError, match=reason):
            await a.probe()
        assert reason in str(a.status()["problem"])
        await a.check_now()  # the same bytes are not loaded again
    path.write_bytes(_encode(_versioned("E", 41)))
    age(path)
    await a.check_now()
    assert await serving() == "นายE1 สกุลE"
    await a.probe()  # healthy again
    assert a.status()["problem"] is None


async def test_a_file_still_being_written_waits_for_settle(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(_encode(_versioned("A", 5)))  # mtime: now
    opts = csv_options(path, reload={"interval": 3600, "settle": 30})
    a = await _opened(CSV, opts)
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="left alone for 30s"):
        await a.fetch(BY_PID, {"pid": make_pid("100000000001")})
    age(path)
    await a.check_now()
    assert len(await a.fetch(BY_PID, {"pid": make_pid("100000000001")})) == 1


async def test_missing_file_then_file_arrives_then_goes(
    tmp_path: Path, closing: list[FileAdapter]
) -> None:
    path = tmp_path / "f.csv"
    a = await _opened(CSV, csv_options(path))
    closing.append(a)
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await a.probe()
    path.write_bytes(_encode(_versioned("A", 5)))
    age(path)
    await a.check_now()
    await a.probe()
    path.unlink()  # the export job removes it before writing the next one
    await a.check_now()
    await a.check_now()
    assert len(await a.fetch(BY_PID, {"pid": make_pid("100000000001")})) == 1
    with pytest.raises(BackendError, match="missing"):
        await a.probe()


async def test_max_age(tmp_path: Path, closing: list[FileAdapter]) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())  # written a minute ago
    a = await _opened(CSV, csv_options(path, max_age=30))
    closing.append(a)
    with pytest.raises(BackendError, match="older than max_age"):
        await a.probe()
    assert len(await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})) == 1  # still served


async def test_store_on_disk(tmp_path: Path, closing: list[FileAdapter]) -> None:
    store = tmp_path / "store"
    store.mkdir()
    stale = store / "export-999999999-1.sqlite"  # left by a process that is gone
    stale.write_bytes(b"")
    path = write_csv(tmp_path / "f.csv", _versioned("A", 10), header=V_HEADER)
    a = await _opened(CSV, csv_options(path, store_dir=store))
    closing.append(a)
    assert not stale.exists()
    files = list(store.iterdir())
    assert len(files) == 1 and files[0].name == f"export-{os.getpid()}-1.sqlite"
    assert len(await a.fetch(BY_PID, {"pid": make_pid("100000000001")})) == 1
    path.write_bytes(_encode(_versioned("B", 10)))
    age(path)
    await a.check_now()
    assert (await a.fetch(BY_PID, {"pid": make_pid("100000000001")}))[0]["VERSION"] == "B"
    for _ in range(100):
        if len(list(store.iterdir())) == 1:
            break
        await asyncio.sleep(0.01)
    assert [f.name for f in store.iterdir()] == [f"export-{os.getpid()}-2.sqlite"]
    await a.close()
    assert list(store.iterdir()) == []


async def test_reload_runs_off_the_event_loop(tmp_path: Path, closing: list[FileAdapter]) -> None:
    """A 60 000-row export loads in a worker while lookups on the old one keep answering."""
    path = write_csv(tmp_path / "f.csv", _versioned("A", 100), header=V_HEADER)
    a = await _opened(CSV, csv_options(path, reload={**MANUAL, "min_ratio": 0}))
    closing.append(a)
    path.write_bytes(_encode(_versioned("B", 60_000)))
    age(path)
    load = asyncio.create_task(a.check_now())
    started = time.monotonic()
    lag, answers = 0.0, 0
    while not load.done():
        t0 = time.monotonic()
        rows = await a.fetch(BY_PID, {"pid": make_pid("100000000001")})
        assert len(rows) == 1
        answers += 1
        await asyncio.sleep(0.005)
        lag = max(lag, time.monotonic() - t0 - 0.005)
    await load
    took = time.monotonic() - started
    assert a.status()["rows"] == 60_000
    assert answers > 5, answers  # lookups kept being answered during the load
    # On the loop, the load would have stalled it for all of `took` (about half a second);
    # in its thread the loop is never late by more than a garbage collection or two.
    assert lag < min(0.25, took / 2), (lag, took)


async def test_atomic_reload_under_load(tmp_path: Path, closing: list[FileAdapter]) -> None:
    """Rewrite the export again and again (in place, slowly; by rename; once left half
    written) while lookups run: every answer is wholly one version, none fails."""
    n = 400
    path = write_csv(tmp_path / "f.csv", _versioned("A", n), header=V_HEADER)
    opts = csv_options(path, index=["GRP"], reload={"interval": 0.02, "settle": 0.15})
    a = await _opened(CSV, opts, BackendLimits(pool_size=4, acquire_timeout=2.0, query_timeout=2.0))
    closing.append(a)
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                g = f"G{rng.randrange(10)}"
                rows = await a.fetch(BY_GROUP, {"g": g})
                versions = {r["VERSION"] for r in rows}
                assert len(rows) == n // 10, (g, len(rows))
                assert len(versions) == 1, versions  # never a mix of two files
                (v,) = versions
                assert all(str(r["FULLNAME"]).endswith(f"สกุล{v}") for r in rows)
                seen.add(v)
                i = rng.randrange(n)
                one = await a.fetch(BY_PID, {"pid": make_pid(f"1{i:011d}")})
                assert (
                    len(one) == 1
                    and one[0]["FULLNAME"] == f"นาย{one[0]['VERSION']}{i} สกุล{one[0]['VERSION']}"
                )
            except BaseException as exc:  # collected, the test fails below
                errors.append(exc)
                return
            await asyncio.sleep(0)

    def write_slowly(content: bytes, chunk: int = 2048) -> None:
        with path.open("wb") as f:  # in place, like a copy over a network share
            for i in range(0, len(content), chunk):
                f.write(content[i : i + chunk])
                f.flush()
                time.sleep(0.003)

    def write_by_rename(content: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)

    async def wait_for(version: str) -> None:
        for _ in range(300):
            if version in seen and a.status()["problem"] is None:
                row = await a.fetch(BY_PID, {"pid": make_pid("100000000001")})
                if row[0]["VERSION"] == version:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"version {version} never served ({a.status()})")

    readers = [asyncio.create_task(reader(s)) for s in range(4)]
    await wait_for("A")
    await asyncio.to_thread(write_slowly, _encode(_versioned("B", n)))
    await wait_for("B")
    await asyncio.to_thread(write_by_rename, _encode(_versioned("C", n)))
    await wait_for("C")
    half = _encode(_versioned("X", n))
    await asyncio.to_thread(write_slowly, half[: len(half) // 2 + 7])  # the writer dies
    for _ in range(300):  # settled, tried, refused
        if "not loaded" in str(a.status()["problem"]):
            break
        await asyncio.sleep(0.02)
    assert (await a.fetch(BY_PID, {"pid": make_pid("100000000001")}))[0]["VERSION"] == "C"
    with pytest.raises(BackendError, match="not loaded"):
        await a.probe()
    await asyncio.to_thread(write_slowly, _encode(_versioned("D", n)))
    await wait_for("D")
    stop.set()
    await asyncio.gather(*readers)
    assert not errors, errors[:3]
    assert "X" not in seen
    assert {"A", "B", "C", "D"} <= seen
    await a.probe()


async def test_close_is_final(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", people_rows())
    a = await _opened(CSV, csv_options(path))
    await a.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        await a.fetch(BY_PID, {"pid": PEOPLE[0]["pid"]})
    await a.close()  # twice is harmless


def test_sample_exports_build_the_same_bytes(tmp_path: Path) -> None:
    """config/exports/make_samples.py is deterministic: the shipped files are its output."""
    root = Path(__file__).resolve().parent.parent / "config" / "exports"
    subprocess.run([sys.executable, str(root / "make_samples.py"), str(tmp_path)], check=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    shipped = sorted(p.name for p in root.iterdir() if p.name in made)
    assert made == shipped and made
    for name in made:
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes(), name


def _copy_worked_example(tmp_path: Path) -> Path:
    root = Path(__file__).resolve().parent.parent / "config"
    conf = tmp_path / "config"
    shutil.copytree(root / "exports", conf / "exports")
    shutil.copy(root / "exports.yaml", conf / "exports.yaml")
    age(*(conf / "exports").iterdir(), seconds=3600)  # last night's export, not one in progress
    return conf / "exports.yaml"


async def test_worked_example_serves_all_three_exports(tmp_path: Path, aiohttp_client: Any) -> None:
    """config/exports.yaml with its sample files: the LC2 answers an operator would see."""
    example = _copy_worked_example(tmp_path)
    settings = load_settings(example, env={"EXPORTS_AUDIT_KEY": "k" * 40})
    assert settings.audit.path.resolve().parent == (tmp_path / "var").resolve()
    client = await aiohttp_client(build_app(build_runtime(settings)))
    somchai = make_pid("174010023456")
    headers = lc2_headers(Authorization=basic(password="demo-password"))  # the example's

    async def data(path: str, pid: str) -> list[dict[str, Any]]:
        resp = await client.get(f"/api/v1/{path}", params={"personalId": pid}, headers=headers)
        assert resp.status == 200, await resp.text()
        rows: list[dict[str, Any]] = (await resp.json())["data"]
        return rows

    licences = await data("fisher-licence", somchai)
    assert [r["licenceNo"] for r in licences] == ["PL-2567-000031", "PL-2566-000142"]
    assert licences[1] | {"fishingGear": None} == {
        "licenceNo": "PL-2566-000142",
        "personalId": somchai,
        "titleDesc": "นาย",
        "firstName": "สมชาย",
        "lastName": "ใจดี",
        "licenceTypeCode": "A1",
        "licenceTypeDesc": "ประมงพาณิชย์ อวนลาก",
        "issueDate": "2023-10-01",
        "expiryDate": "2025-09-30",
        "fishingGear": None,
        "statusCode": "A",
        "statusDesc": "ใช้งาน",
    }
    assert licences[1]["fishingGear"] == "อวนลากคานถ่าง ๑ ปาก เรือ ศ.สมชายนาวา ๑๒ ขนาด ๒๐ ตันกรอส"
    malee = await data("fisher-licence", make_pid("321010011890"))
    assert malee[0]["issueDate"] == "2024-02-29"  # 29 Feb 2567 BE kept by the CHAR(8) column
    assert malee[0]["fishingGear"] == "เบ็ดราว ๒๐๐ ตัว น้ำจืด"  # decomposed sara am composed
    assert await data("fisher-licence", make_pid("500000000001")) == []  # deleted record

    farms = await data("aqua-farm-register", somchai)
    assert [f["farmName"] for f in farms] == ['ฟาร์มกุ้ง "สมชาย"', "บ่อปลานิล, แปลง ๒"]
    assert farms[0]["gap"] == {"certificateNo": "GAP-74-0091", "expiryDate": "2027-03-31"}
    assert farms[0]["areaRai"] == 12.5 and farms[1]["speciesDesc"] == "ปลานิล"

    paid = await data("fisher-compensation", somchai)
    assert [(p["paymentDate"], p["amount"]) for p in paid] == [
        ("2024-12-01", 3000.0),
        ("2024-03-05", 15000.0),
    ]
    # the sandbox answers rows of its own invented person, and none of a real one
    sandbox_pid = plain_pid(str(settings.services["fisherLicence"].sandbox_rows[0]["PID"]))
    for pid, count in ((sandbox_pid, 2), (somchai, 0)):
        sandbox = await client.get(
            "/api/v1/fisher-licence/sandbox", params={"personalId": pid}, headers=headers
        )
        assert sandbox.status == 200 and len((await sandbox.json())["data"]) == count
    for service in ("fisher-licence", "aqua-farm-register", "fisher-compensation"):
        for _ in range(50):
            health = await client.get(f"/api/v1/{service}/health")
            if health.status == 200:
                break
            await asyncio.sleep(0.05)
        assert health.status == 200, await health.text()
