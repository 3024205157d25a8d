"""Legacy tables unlike the demo, for ``scaffold`` and ``profile``, with what they must give.

Each table is generated from a list of people (the truth: citizen ID, title,
names, dates as CE numbers, province) and written the way such a system
stores it; what the gateway must serve is computed from the truth directly,
never by the gateway's transforms.  Defects are planted on chosen rows, one
kind per row, so a profile's counts can be asserted exactly.

- MariaDB ``FISHER_TIS``: a latin1 table holding TIS-620 bytes (read through a
  utf8mb4 and a latin1 connection), citizen IDs plain and dashed in one column,
  birth dates as DD/MM/YYYY BE strings, registration dates as YYYYMMDD BE with
  00 parts, a province code table without a foreign key, Y/N flags, numeric text.
- PostgreSQL ``person_be``: BE years inside DATE columns, separate name columns,
  house numbers in Thai digits, a province code table with a foreign key.
- ``legacy_char`` (read through ODBC): SQL Server-style CHAR padding on every
  column, YYYYMMDD BE with 00 parts, a code table found by its column's name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from gateway.transforms import check_digit

__all__ = ["PROVINCES", "Fixture", "mariadb_fixture", "odbc_fixture", "pg_fixture"]

PROVINCES = {"10": "กรุงเทพมหานคร", "20": "ชลบุรี", "74": "สมุทรสาคร", "84": "สุราษฎร์ธานี"}
_TITLES = (("นาย", "m"), ("นาง", "f"), ("นางสาว", "f"), ("ด.ช.", "m"), ("พ.ต.ท.", "m"))
_FIRST = {"m": ("สมชาย", "ประเสริฐ", "วิชัย", "บุญมี", "ณรงค์"),
          "f": ("สมหญิง", "มาลี", "วันเพ็ญ", "บุปผา", "กนกวรรณ")}  # fmt: skip
_LAST = ("ใจดี", "ศรีสุข", "ทองคำ", "แสงทอง", "บุญมา", "รักษ์ทะเล")
_SOI = ("ซอยวัดใหม่", "ซอยประมง", "ซอยท่าเรือ", "ซอยร่วมใจ")
_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


@dataclass(frozen=True)
class Person:
    pid: str
    title: str
    first: str
    last: str
    sex: str
    born: tuple[int, int, int]  # CE year, month, day (0: unknown)
    registered: tuple[int, int, int]
    province: str


@dataclass
class Fixture:
    table: str
    rows: list[dict[str, Any]]  # legacy-shaped, column -> value to store
    served: dict[str, list[dict[str, Any]]]  # citizen ID -> the objects the gateway must serve
    plan: dict[str, tuple[str, list[Any]]]  # field -> (column, transforms) scaffold must draft
    planted: dict[str, int] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # the code table: code -> description


def _pid(rng: random.Random) -> str:
    first12 = str(rng.choice((1, 3, 5))) + "".join(str(rng.randrange(10)) for _ in range(11))
    return first12 + str(check_digit(first12))


def _wrong(pid: str) -> str:
    return pid[:12] + str((int(pid[12]) + 1) % 10)


def _dashed(pid: str) -> str:
    return f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}"


def _iso(d: tuple[int, int, int]) -> str:
    y, m, day = d
    return f"{y:04d}" + (f"-{m:02d}" if m else "") + (f"-{day:02d}" if m and day else "")


def people(seed: int, n: int) -> list[Person]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        title, sex = _TITLES[i % len(_TITLES)]
        born = (rng.randrange(1950, 1995), rng.randrange(1, 13), rng.randrange(1, 29))
        if i % 6 == 0:
            born = (born[0], born[1], 0)  # an unknown day
        registered = (rng.randrange(2002, 2023), rng.randrange(1, 13), rng.randrange(1, 29))
        out.append(
            Person(_pid(rng), title, rng.choice(_FIRST[sex]), rng.choice(_LAST),
                   "1" if sex == "m" else "2", born, registered,
                   rng.choice(sorted(PROVINCES)))
        )  # fmt: skip
    return out


def _dmy_be(d: tuple[int, int, int]) -> str:
    return f"{d[2]:02d}/{d[1]:02d}/{d[0] + 543}"


def _ymd_be(d: tuple[int, int, int]) -> str:
    return f"{d[0] + 543}{d[1]:02d}{d[2]:02d}"


def _tis(text: str) -> bytes:
    return text.encode("cp874")


def mariadb_fixture() -> Fixture:
    """Rows 1-2 fail the checksum, 3 holds 31 February, 4 a birth before 1900, 5 a
    registration in the future, 6-7 a birth after the registration, 8 a province code
    missing from the code table, 9-10 bytes that are not TIS-620 in SOI; people 11-13
    have a second registration with their ID spelled the other way."""
    ps = people(19, 40)
    rows: list[dict[str, Any]] = []
    served: dict[str, list[dict[str, Any]]] = {}
    for i, p in enumerate([*ps, *ps[11:14]]):
        again = i >= len(ps)
        born, reg, prov = p.born, p.registered, p.province
        birth_text = _dmy_be(born)
        if i == 3:
            birth_text = "31/02/2540"
        if i == 4:
            born = (1887, 1, 1)
            birth_text = _dmy_be(born)
        if i == 5:
            reg = (2047, 1, 1)
        if i in (6, 7):
            reg = (born[0] - 1, 6, 15)
        if i == 8:
            prov = "99"
        soi = _tis(_SOI[i % len(_SOI)])
        soi_served = _SOI[i % len(_SOI)]
        if i in (9, 10):
            soi = soi[:-1] + b"\xfc"  # no TIS-620 character: stays mojibake
            soi_served = soi.decode("latin-1")
        pid = _wrong(p.pid) if i in (1, 2) else p.pid
        first = i - len(ps) + 11 if again else i  # the person's first row
        spelled = _dashed(pid) if (first % 2 == 0) != again else pid
        glued = f"{p.title}{p.first}{'  ' if i % 4 == 0 else ' '}{p.last}"
        reg = (reg[0], reg[1], 0 if i % 5 == 0 else reg[2])  # an unknown day
        rows.append({
            "REG_NO": f"R{2560 + i % 7}-{i:04d}", "PID": spelled, "FULLNAME": _tis(glued),
            "BIRTH_DATE": birth_text, "REG_DATE": _ymd_be(reg),
            "PROV_CODE": prov, "SOI": soi, "ACTIVE": "Y" if i % 3 else "N",
            "AREA_RAI": f"{(i % 9) + 1}.{(i * 25) % 100:02d}", "STATUS": "A" if i % 4 else "C",
        })  # fmt: skip
        if i in (1, 2):
            continue  # an invalid citizen ID can not be asked for
        served.setdefault(pid, []).append({
            "regNo": rows[-1]["REG_NO"], "personalId": pid, "titleDesc": p.title,
            "firstName": p.first, "lastName": p.last,
            "dateOfBirth": None if i == 3 else _iso(born), "registrationDate": _iso(reg),
            "provinceCode": prov, "provinceDesc": PROVINCES.get(prov), "alleyDesc": soi_served,
            "active": bool(i % 3), "areaRai": float(rows[-1]["AREA_RAI"]),
            "statusCode": rows[-1]["STATUS"],
        })  # fmt: skip
    name = [("cp874", "clean")]
    plan: dict[str, tuple[str, list[Any]]] = {
        "regNo": ("REG_NO", ["trim"]),
        "personalId": ("PID", ["pid"]),
        "titleDesc": ("FULLNAME", [*name[0], {"name": "title"}]),
        "firstName": ("FULLNAME", [*name[0], {"name": "first"}]),
        "lastName": ("FULLNAME", [*name[0], {"name": "last"}]),
        "dateOfBirth": ("BIRTH_DATE", ["be_date"]),
        "registrationDate": ("REG_DATE", ["be_date"]),
        "provinceCode": ("PROV_CODE", ["trim"]),
        "provinceDesc": ("PROV_CODE_DESC", ["cp874", "clean"]),
        "alleyDesc": ("SOI", ["cp874", "clean"]),
        "active": ("ACTIVE", ["bool"]),
        "areaRai": ("AREA_RAI", ["trim", {"decimal": {"places": 2}}]),
        "statusCode": ("STATUS", ["trim"]),
        "statusDesc": ("STATUS", ["trim", {"lookup": "fisherTis_status"}]),
    }
    planted = {
        "invalid_checksums.personalId": 2, "failures.dateOfBirth": 1,
        "before_1900.dateOfBirth": 1, "future.registrationDate": 1,
        "born_after_registered.dateOfBirth": 2, "missing_codes.provinceDesc": 1,
        "mojibake.alleyDesc": 2, "several_spellings": 3, "with_several_rows": 3,
        "rows": len(rows), "unclean": 10,
    }  # fmt: skip
    return Fixture("FISHER_TIS", rows, served, plan, planted, PROVINCES)


def pg_fixture() -> Fixture:
    """Rows 1-2 fail the checksum, 3 a birth before 1900, 4 a registration in the future,
    5 a birth after the registration; BE years are stored in the DATE columns."""
    ps = people(2567, 30)
    rows: list[dict[str, Any]] = []
    served: dict[str, list[dict[str, Any]]] = {}
    for i, p in enumerate(ps):
        born = (p.born[0], p.born[1], p.born[2] or 1)  # a DATE has a day
        reg = p.registered
        if i == 3:
            born = (1887, 3, 1)
        if i == 4:
            reg = (2057, 1, 1)
        if i == 5:
            reg = (born[0] - 2, 1, 10)
        pid = _wrong(p.pid) if i in (1, 2) else p.pid
        spelled = (pid, _dashed(pid), _dashed(pid).replace("-", " "))[i % 3]
        house = f"{i + 1}/{i % 7 + 1}".translate(_THAI_DIGITS) if i % 2 else f"{i + 1}"
        rows.append({
            "pid": spelled, "title": p.title, "fname": p.first + ("  " if i % 3 == 0 else ""),
            "lname": p.last, "birth": (born[0] + 543, born[1], born[2]),
            "regist_date": (reg[0] + 543, reg[1], reg[2]), "prov_code": p.province,
            "house_no": house, "sex": p.sex,
        })  # fmt: skip
        if i in (1, 2):
            continue
        served.setdefault(pid, []).append({
            "personalId": pid, "titleDesc": p.title, "firstName": p.first, "lastName": p.last,
            "dateOfBirth": _iso(born), "registrationDate": _iso(reg),
            "provinceCode": p.province, "provinceDesc": PROVINCES[p.province],
            "houseNo": f"{i + 1}/{i % 7 + 1}" if i % 2 else f"{i + 1}", "genderCode": p.sex,
        })  # fmt: skip
    plan: dict[str, tuple[str, list[Any]]] = {
        "personalId": ("pid", ["pid"]),
        "titleDesc": ("title", ["clean"]),
        "firstName": ("fname", ["clean"]),
        "lastName": ("lname", ["clean"]),
        "dateOfBirth": ("birth", ["be_date"]),
        "registrationDate": ("regist_date", ["be_date"]),
        "provinceCode": ("prov_code", ["trim"]),
        "provinceDesc": ("prov_code_DESC", ["cp874", "clean"]),
        "houseNo": ("house_no", ["clean", "arabic_digits"]),
        "genderCode": ("sex", ["trim"]),
        "genderDesc": ("sex", ["trim", {"lookup": "personBe_sex"}]),
    }
    planted = {
        "invalid_checksums.personalId": 2, "before_1900.dateOfBirth": 1,
        "future.registrationDate": 1, "born_after_registered.dateOfBirth": 1,
        "rows": len(rows), "unclean": 5, "several_spellings": 0, "with_several_rows": 0,
    }  # fmt: skip
    return Fixture("person_be", rows, served, plan, planted, PROVINCES)


def odbc_fixture() -> Fixture:
    """Row 1 fails the checksum, 2 holds month 13, 3 a province code missing from the
    code table; every value is CHAR-padded as SQL Server keeps CHAR columns."""
    ps = people(874, 25)
    rows: list[dict[str, Any]] = []
    served: dict[str, list[dict[str, Any]]] = {}
    for i, p in enumerate(ps):
        pid = _wrong(p.pid) if i == 1 else p.pid
        bdate = "25401399" if i == 2 else _ymd_be(p.born)
        prov = "99" if i == 3 else p.province
        rows.append({
            "pid": pid.ljust(17), "full_name": f"{p.title}{p.first} {p.last}".ljust(60),
            "bdate": bdate, "provcd": prov, "flag": "Y" if i % 2 else "N",
        })  # fmt: skip
        if i == 1:
            continue
        served.setdefault(pid, []).append({
            "personalId": pid, "titleDesc": p.title, "firstName": p.first, "lastName": p.last,
            "dateOfBirth": None if i == 2 else _iso(p.born), "provinceCode": prov,
            "provinceDesc": PROVINCES.get(prov), "flag": bool(i % 2),
        })  # fmt: skip
    plan: dict[str, tuple[str, list[Any]]] = {
        "personalId": ("pid", ["pid"]),
        "titleDesc": ("full_name", ["clean", {"name": "title"}]),
        "firstName": ("full_name", ["clean", {"name": "first"}]),
        "lastName": ("full_name", ["clean", {"name": "last"}]),
        "dateOfBirth": ("bdate", ["be_date"]),
        "provinceCode": ("provcd", ["trim"]),
        "provinceDesc": ("provcd_DESC", ["cp874", "clean"]),
        "flag": ("flag", ["bool"]),
    }
    planted = {
        "invalid_checksums.personalId": 1, "failures.dateOfBirth": 1,
        "missing_codes.provinceDesc": 1, "rows": len(rows), "unclean": 3,
        "several_spellings": 0, "with_several_rows": 0,
    }  # fmt: skip
    return Fixture("legacy_char", rows, served, plan, planted, PROVINCES)


# --- loading them into the test servers ------------------------------------------------------


async def load_mariadb(conn: Any, fx: Fixture) -> None:
    """A latin1 database as an old system left it: TIS-620 bytes in every text column."""
    cur = conn.cursor()
    await cur.execute("DROP TABLE IF EXISTS FISHER_TIS, PROVINCE")
    await cur.execute(
        "CREATE TABLE PROVINCE (PROV_CODE CHAR(2) PRIMARY KEY, PROV_NAME VARCHAR(60)) "
        "CHARACTER SET latin1"
    )
    await cur.execute(
        "CREATE TABLE FISHER_TIS (REG_NO VARCHAR(12), PID CHAR(17), FULLNAME VARCHAR(100), "
        "BIRTH_DATE CHAR(10), REG_DATE CHAR(8), PROV_CODE CHAR(2), SOI VARCHAR(60), "
        "ACTIVE CHAR(1), AREA_RAI VARCHAR(10), STATUS CHAR(1), KEY (PID)) CHARACTER SET latin1"
    )
    for code, name in fx.codes.items():
        await cur.execute("INSERT INTO PROVINCE VALUES (%s, %s)", (code, _tis(name)))
    cols = list(fx.rows[0])
    marks = ", ".join(["%s"] * len(cols))
    for row in fx.rows:
        await cur.execute(f"INSERT INTO FISHER_TIS ({', '.join(cols)}) VALUES ({marks})",
                          tuple(row[c] for c in cols))  # fmt: skip
    await cur.close()


async def _load_pg_tables(
    conn: Any, fx: Fixture, code_table: str, ddl: str, values: list[tuple[Any, ...]]
) -> None:
    """Drop and create the table and its code table (``ddl``), then fill both."""
    await conn.execute(f"DROP TABLE IF EXISTS {fx.table}; DROP TABLE IF EXISTS {code_table}; {ddl}")
    await conn.executemany(f"INSERT INTO {code_table} VALUES ($1, $2)", list(fx.codes.items()))
    marks = ", ".join(f"${i}" for i in range(1, len(values[0]) + 1))
    await conn.executemany(f"INSERT INTO {fx.table} VALUES ({marks})", values)


async def load_pg(conn: Any, fx: Fixture) -> None:
    """BE years stored in DATE columns; province codes with a foreign key."""
    import datetime as dt

    ddl = (
        "CREATE TABLE province (prov_code CHAR(2) PRIMARY KEY, prov_name VARCHAR(60)); "
        "CREATE TABLE person_be (pid VARCHAR(17), title VARCHAR(20), fname VARCHAR(50), "
        "lname VARCHAR(50), birth DATE, regist_date DATE, "
        "prov_code CHAR(2) REFERENCES province (prov_code), house_no VARCHAR(10), sex CHAR(1)); "
        "CREATE INDEX ON person_be (pid)"
    )
    values = [
        (r["pid"], r["title"], r["fname"], r["lname"], dt.date(*r["birth"]),
         dt.date(*r["regist_date"]), r["prov_code"], r["house_no"], r["sex"])
        for r in fx.rows
    ]  # fmt: skip
    await _load_pg_tables(conn, fx, "province", ddl, values)


async def load_char_table(conn: Any, fx: Fixture) -> None:
    """CHAR columns throughout, as a SQL Server system keeps them (read through ODBC)."""
    ddl = (
        "CREATE TABLE code_prov (provcd CHAR(2), prov_name CHAR(40)); "
        "CREATE TABLE legacy_char (pid CHAR(17), full_name CHAR(60), bdate CHAR(8), "
        "provcd CHAR(2), flag CHAR(1))"
    )
    values = [tuple(r[c] for c in ("pid", "full_name", "bdate", "provcd", "flag")) for r in fx.rows]
    await _load_pg_tables(conn, fx, "code_prov", ddl, values)


KINDS = ("mariadb-utf8mb4", "mariadb-latin1", "postgresql", "odbc-char")


def fixture_for(kind: str) -> Fixture:
    if kind.startswith("mariadb"):
        return mariadb_fixture()
    return pg_fixture() if kind == "postgresql" else odbc_fixture()


async def load(kind: str, pg_dsn: str, mysql: Any, fx: Fixture) -> dict[str, Any]:
    """Load the kind's table; the backend block that reads it."""
    from urllib.parse import urlsplit

    import asyncmy
    import asyncpg

    common = {"query_timeout": 10, "health": {"interval": 5, "timeout": 3}}
    if kind.startswith("mariadb"):
        conn = await asyncmy.connect(
            host=mysql.host, port=mysql.port, user=mysql.user, password=mysql.password,
            database=mysql.database, autocommit=True,
        )  # fmt: skip
        try:
            await load_mariadb(conn, fx)
        finally:
            conn.close()
        return {
            "type": "mysql", "host": mysql.host, "port": mysql.port, "user": mysql.user,
            "database": mysql.database, "charset": kind.split("-")[1], **common,
        }  # fmt: skip
    pg = await asyncpg.connect(pg_dsn)
    try:
        await (load_pg(pg, fx) if kind == "postgresql" else load_char_table(pg, fx))
    finally:
        await pg.close()
    if kind == "postgresql":
        return {"type": "postgresql", "dsn": pg_dsn, **common}
    dsn = urlsplit(pg_dsn)
    cs = (
        f"Driver={{PostgreSQL Unicode}};Server={dsn.hostname};Port={dsn.port or 5432};"
        f"Database={dsn.path.lstrip('/')}"
    )
    return {"type": "odbc", "connection_string": cs, "user": dsn.username or "postgres", **common}
