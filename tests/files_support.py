"""Legacy export files written for tests: a dBase/FoxPro register and Windows CSV exports."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dbf  # type: ignore[import-untyped, unused-ignore]

COLUMNS = "PID C(17); FULLNAME C(100); SEX C(1); BIRTH_DATE C(8); MOO C(2); NOTE M"


def age(*paths: Path, seconds: float = 60) -> None:
    """Make files look written a while ago (a writer that is done)."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def write_dbf(
    path: Path,
    people: Iterable[dict[str, Any]],
    *,
    dbf_type: str = "db3",
    deleted: int = 1,
) -> Path:
    """A register the way a dBase/FoxPro program keeps it: cp874 text, a memo, deleted rows."""
    table = dbf.Table(str(path), COLUMNS, codepage="cp874", dbf_type=dbf_type)
    table.open(dbf.READ_WRITE)
    try:
        for p in people:
            note = f"ออกใบอนุญาตแล้ว เลขที่ {p['pid'][-4:]}"
            table.append((p["PID"], p["FULLNAME"], p["SEX"], p["BIRTH_DATE"], p["MOO"], note))
        for i in range(deleted):
            table.append((f"9-9999-9999{i}-99-9", "ลบแล้ว", "1", "", "", "ลบ"))
            dbf.delete(table[-1])
    finally:
        table.close()
    memo = [m for m in path.parent.iterdir() if m.stem == path.stem and m != path]
    age(path, *memo)
    return path


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    encoding: str = "cp874",
    header: Sequence[str] | None = ("PID", "FULLNAME", "SEX", "BIRTH_DATE", "MOO"),
) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # Windows exporters
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    age(path)
    return path
