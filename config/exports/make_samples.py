"""Build the sample exports that config/exports.yaml serves.

    python config/exports/make_samples.py [OUTPUT_DIR]    (default: this directory)

Three nightly exports of older Department of Fisheries systems, shaped the way
such systems write them:

* FISHLIC.DBF + FISHLIC.DBT - fisher licences from a FoxPro-era program: dBase III
  with a memo field, text in cp874 (TIS-620), citizen IDs with dashes, spaces or
  padding, issue dates as Buddhist Era CHAR(8), a deleted record still in the file;
* AQUAFARM.CSV - aquaculture farm register, cp874, CRLF line ends, quoted fields;
* COMPENS.TXT - compensation payments from a COBOL budget system: fixed-width
  records laid out in bytes, cp874, amounts right-aligned.

The .dbf is written by the ``dbf`` package (an independent dBase writer, in the
test extra: ``pip install '.[test]'``); the text files by the standard library.
Output is byte-for-byte the same on every run: the dBase header's "last update"
date, the one thing the writer takes from the clock, is set to a fixed day.
"""

from __future__ import annotations

import csv
import datetime
import io
import sys
from pathlib import Path

import dbf  # type: ignore[import-untyped, unused-ignore]

__all__ = ["main"]

LAST_UPDATE = datetime.date(2024, 1, 15)  # when the sample "export" ran


def pid(first12: str, form: str = "plain") -> str:
    """A citizen ID with a valid check digit, spelled the way a legacy column holds it."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    full = first12 + str((11 - total % 11) % 10)
    if form == "dashed":
        return f"{full[0]}-{full[1:5]}-{full[5:10]}-{full[10:12]}-{full[12]}"
    if form == "spaced":
        return f"{full[0]} {full[1:5]} {full[5:10]} {full[10:12]} {full[12]}"
    if form == "padded":
        return full.ljust(17)
    return full


# fmt: off
# (licence no, PID, full name, type, issued BE, expires CE, gear memo, status)
LICENCES = [
    ("PL-2566-000142", pid("174010023456", "dashed"), "นายสมชาย  ใจดี", "A1",
     "25661001", datetime.date(2025, 9, 30),
     "อวนลากคานถ่าง ๑ ปาก\r\nเรือ ศ.สมชายนาวา ๑๒ ขนาด ๒๐ ตันกรอส", "A"),
    ("PL-2567-000031", pid("174010023456", "plain"), "นายสมชาย ใจดี", "C1",
     "25670115", datetime.date(2026, 1, 14), "ลอบปู ๓๐ ลูก", "A"),
    ("PL-2565-000877", pid("383010045712", "padded"), "จ.ส.อ.สมศักดิ์  ทองคำ", "B2",
     "25650301", datetime.date(2024, 2, 29), "อวนล้อมจับ\r\nใบอนุญาตหมดอายุ รอต่ออายุ", "C"),
    # the memo spells น้ำ with a decomposed sara am (nikhahit + sara aa), as typed long ago
    ("PL-2566-001203", pid("321010011890", "spaced"), "นางสาวมาลี ศรีสุข", "C1",
     "25670229", datetime.date(2025, 2, 28), "เบ็ดราว ๒๐๐ ตัว\r\nน\u0e49\u0e4d\u0e32จืด", "A"),
]
DELETED = ("PL-2564-000001", pid("500000000001"), "ด.ญ.วันเพ็ญ แสงทอง", "C1",
           "25640101", datetime.date(2023, 1, 1), "ยกเลิก ออกผิดคน", "C")

# (farm id, owner PID, farm name, species code, area rai, GAP cert, GAP expiry BE, province)
FARMS = [
    ("F74-000102", pid("174010023456", "dashed"), "ฟาร์มกุ้ง \"สมชาย\"", "01", " 12.50",
     "GAP-74-0091", "31/03/2570", "74"),
    ("F74-000311", pid("174010023456"), "บ่อปลานิล, แปลง ๒", "05", "3", "", "", "74"),
    ("F21-004411", pid("321010011890", "padded"), "ฟาร์มหอยแครงมาลี", "12", "25.0",
     "GAP-21-1207", "15/11/2568", "21"),
]

# Fixed layout, in bytes, 1-based: PID 1-13, NAME 14-53, PAY_DATE 54-61, AMOUNT 62-73, PROV 74-75
COMPENSATION = [
    (pid("174010023456"), "นายสมชาย ใจดี", "25670305", 15000.00, "74"),
    (pid("383010045712"), "จ.ส.อ.สมศักดิ์ ทองคำ", "25670305", 7500.50, "84"),
    (pid("174010023456"), "นายสมชาย ใจดี", "25671201", 3000.00, "74"),
]
# fmt: on


def write_dbf(out: Path) -> None:
    path = out / "FISHLIC.DBF"
    for old in (path, out / "FISHLIC.DBT"):
        old.unlink(missing_ok=True)
    table = dbf.Table(
        str(path),
        "LIC_NO C(15); PID C(17); FULLNAME C(60); LIC_TYPE C(2); ISSUE_DT C(8); "
        "EXPIRE_DT D; GEAR M; STATUS C(1)",
        codepage="cp874",
        dbf_type="db3",
    )
    table.open(dbf.READ_WRITE)
    try:
        for row in (*LICENCES, DELETED):
            table.append(row)
        dbf.delete(table[-1])  # marked deleted, still in the file, as dBase leaves it
    finally:
        table.close()
    with path.open("r+b") as f:  # bytes 1-3: last update as YY (since 1900), MM, DD
        f.seek(1)
        f.write(bytes([LAST_UPDATE.year - 1900, LAST_UPDATE.month, LAST_UPDATE.day]))


def write_csv(out: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["FARM_ID", "OWNER_PID", "FARM_NAME", "SPECIES", "AREA_RAI", "GAP_NO",
                "GAP_EXPIRE", "PROV"])  # fmt: skip
    w.writerows(FARMS)
    (out / "AQUAFARM.CSV").write_bytes(buf.getvalue().encode("cp874"))


def write_fixed_width(out: Path) -> None:
    lines = []
    for p, name, paid, amount, prov in COMPENSATION:
        record = (
            p.encode("ascii")
            + name.encode("cp874").ljust(40)
            + paid.encode("ascii")
            + f"{amount:12.2f}".encode("ascii")
            + prov.encode("ascii")
        )
        assert len(record) == 75, record
        lines.append(record)
    (out / "COMPENS.TXT").write_bytes(b"\r\n".join(lines) + b"\r\n")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    write_dbf(out)
    write_csv(out)
    write_fixed_width(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
