"""Benchmark data: a legacy-shaped fisher register of N citizens in PostgreSQL.

The data are generated, deterministic and invented (every citizen ID is a
counter run through a bijection, with a valid check digit), shaped like the
legacy systems the gateway fronts:

* ``FISHER_REG`` (one row per citizen): ``PID CHAR(17)`` spelled plain,
  dashed (``1-2345-67890-12-1``) or grouped with spaces; ``FULLNAME`` with the
  title glued on, 80 % as TIS-620 mojibake (the bytes decoded as latin1, as a
  latin1 column migrated to UTF-8 leaves them) and 20 % as re-keyed UTF-8 with
  a zero-width space; ``BIRTH_DATE CHAR(8)`` Buddhist Era with ``00`` parts;
  ``REG_DATE`` ``DD/MM/YYYY`` BE; a DOPA-coded address.
* ``VESSEL_REG``: exactly ten vessels for each of the first ``owners``
  citizens, with BE dates, mojibake names, tonnage as text and a home port
  address (the ten-row scenario).

A btree index on each PID column serves the gateway's multi-spelling query
``WHERE PID IN (:personalId, :personalId__dashed, :personalId__spaced,
:personalId__padded)``.  The database is reused while its fingerprint and
row count match, so only the first run pays for seeding.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = [
    "DEFAULT_DATABASE",
    "Dataset",
    "check_digit",
    "database_dsn",
    "drop_database",
    "ensure_seeded",
    "hit_pids",
    "miss_pids",
    "owner_pids",
    "pid_for",
    "write_pid_file",
]

DEFAULT_DATABASE = "lc2_bench"
GENERATOR_VERSION = "3"
_SEED = 2567
_BODY_MOD = 10**11
_BODY_MUL = 7919  # coprime with 10**11: i -> body is a bijection, so PIDs never repeat
_BODY_ADD = 104_729
_BATCH = 50_000


@dataclass(frozen=True, slots=True)
class Dataset:
    rows: int  # citizens in FISHER_REG
    owners: int  # citizens with ten vessels each

    @classmethod
    def for_rows(cls, rows: int) -> Dataset:
        return cls(rows=rows, owners=max(1, min(20_000, rows // 10)))

    @property
    def fingerprint(self) -> str:
        text = f"v{GENERATOR_VERSION}:seed{_SEED}:rows{self.rows}:owners{self.owners}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_digit(first12: str) -> int:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return (11 - total % 11) % 10


def pid_for(i: int) -> str:
    """The i-th citizen ID: unique for every i below 10**11, checksum valid."""
    klass = "1" if i % 100 < 55 else "3" if i % 100 < 95 else "5" if i % 100 < 97 else "8"
    first12 = f"{klass}{(i * _BODY_MUL + _BODY_ADD) % _BODY_MOD:011d}"
    return first12 + str(check_digit(first12))


def _dashed(p: str) -> str:
    return f"{p[0]}-{p[1:5]}-{p[5:10]}-{p[10:12]}-{p[12]}"


def _spaced(p: str) -> str:
    return f"{p[0]} {p[1:5]} {p[5:10]} {p[10:12]} {p[12]}"


def hit_pids(ds: Dataset, count: int) -> list[str]:
    rng = random.Random(_SEED + 1)
    return [pid_for(rng.randrange(ds.rows)) for _ in range(count)]


def miss_pids(ds: Dataset, count: int) -> list[str]:
    """Valid IDs that are in no table: indexes past every seeded one."""
    base = ds.rows + 1_000_000
    return [pid_for(base + i) for i in range(count)]


def owner_pids(ds: Dataset, count: int) -> list[str]:
    rng = random.Random(_SEED + 2)
    return [pid_for(rng.randrange(ds.owners)) for _ in range(count)]


def write_pid_file(path: Path, pids: Sequence[str]) -> Path:
    path.write_text("".join(p + "\n" for p in pids), encoding="ascii")
    return path


# --- legacy-shaped values ----------------------------------------------------------

_TITLES_M = ("นาย", "นาย", "นาย", "จ.ส.อ.", "ด.ช.")
_TITLES_F = ("นาง", "นางสาว", "น.ส.", "ด.ญ.")
_FIRST_M = ("สมชาย", "ประเสริฐ", "วิชัย", "สมศักดิ์", "บุญมี", "ณรงค์", "กำพล", "สุรชัย")
_FIRST_F = ("สมหญิง", "มาลี", "วันเพ็ญ", "สุดารัตน์", "บุปผา", "กนกวรรณ", "อำไพ", "จันทร์เพ็ญ")
_LAST = ("ใจดี", "ศรีสุข", "ทองคำ", "แสงทอง", "บุญมา", "รักษ์ทะเล", "น้ำใจดี", "ศรีสมุทร")
# (province code, province, amphur code, amphur, tambon code, tambon)
_PLACES = (
    ("11", "สมุทรปราการ", "1101", "เมืองสมุทรปราการ", "110101", "ปากน้ำ"),
    ("20", "ชลบุรี", "2007", "ศรีราชา", "200703", "บางพระ"),
    ("21", "ระยอง", "2103", "แกลง", "210306", "ปากน้ำประแส"),
    ("74", "สมุทรสาคร", "7401", "เมืองสมุทรสาคร", "740102", "ท่าฉลอม"),
    ("75", "สมุทรสงคราม", "7501", "เมืองสมุทรสงคราม", "750107", "แหลมใหญ่"),
    ("76", "เพชรบุรี", "7606", "บ้านแหลม", "760606", "บางตะบูน"),
    ("77", "ประจวบคีรีขันธ์", "7707", "หัวหิน", "770701", "หัวหิน"),
    ("83", "ภูเก็ต", "8301", "เมืองภูเก็ต", "830106", "ฉลอง"),
    ("90", "สงขลา", "9001", "เมืองสงขลา", "900106", "เกาะยอ"),
    ("92", "ตรัง", "9202", "กันตัง", "920212", "เกาะลิบง"),
)
_BOATS = ("ส.ประเสริฐ", "โชคอำนวย", "ทรัพย์ทะเล", "เจริญสมุทร", "มงคลชัย", "นำโชค")


def _mojibake(text: str) -> str:
    """TIS-620 bytes read through a latin1 column: what the cp874 transform repairs."""
    return text.encode("cp874").decode("latin1")


def _thai(text: str, rng: random.Random) -> str:
    # 80 % of rows come from the old import (mojibake); re-keyed rows carry a zero-width space.
    if rng.random() < 0.8:
        return _mojibake(text)
    return text.replace(" ", " \u200b", 1) if " " in text else text + "\u200b"


def _be_date(rng: random.Random, first: int, last: int) -> str:
    r = rng.random()
    if r < 0.02:
        return "00000000"
    year = rng.randrange(first, last)
    if r < 0.05:
        return f"{year}0000"
    month = rng.randrange(1, 13)
    if r < 0.10:
        return f"{year}{month:02d}00"
    return f"{year}{month:02d}{rng.randrange(1, 29):02d}"


def _pid_spelling(pid: str, rng: random.Random) -> str:
    r = rng.random()
    return pid if r < 0.45 else _dashed(pid) if r < 0.80 else _spaced(pid)


def _fisher_rows(ds: Dataset) -> Iterator[tuple[object, ...]]:
    rng = random.Random(_SEED)
    for i in range(ds.rows):
        pid = pid_for(i)
        male = rng.random() < 0.6
        title = rng.choice(_TITLES_M if male else _TITLES_F)
        first = rng.choice(_FIRST_M if male else _FIRST_F)
        fullname = f"{title}{first}  {rng.choice(_LAST)} "
        prov, prov_name, amp, amp_name, tam, tam_name = rng.choice(_PLACES)
        moo = rng.randrange(0, 13)
        yield (
            f"PR-{2540 + i % 27}-{i:07d}",
            _pid_spelling(pid, rng),
            _thai(fullname, rng),
            "1" if male else "2",
            _be_date(rng, 2480, 2550),
            f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(2540, 2567)}",
            f"{rng.randrange(1, 300)}/{rng.randrange(1, 9)}" if rng.random() < 0.4
            else str(rng.randrange(1, 300)),
            str(moo) if moo else "",
            tam,
            _thai(tam_name, rng),
            amp,
            _thai(amp_name, rng),
            prov,
            _thai(prov_name, rng),
            "A" if rng.random() < 0.95 else "C",
        )


def _vessel_rows(ds: Dataset) -> Iterator[tuple[object, ...]]:
    rng = random.Random(_SEED + 3)
    for owner in range(ds.owners):
        pid = pid_for(owner)
        for k in range(10):
            prov, prov_name, amp, amp_name, tam, tam_name = rng.choice(_PLACES)
            year = rng.randrange(2540, 2567)
            yield (
                f"{prov}-{year}-{owner:06d}{k}",
                _pid_spelling(pid, rng),
                _thai(f"{rng.choice(_BOATS)} {rng.randrange(1, 30)}", rng),
                f"{rng.randrange(1, 6):02d}" if rng.random() < 0.9 else str(rng.randrange(1, 6)),
                f" {rng.randrange(3, 150)}.{rng.randrange(0, 100):02d}",
                f"{rng.randrange(8, 40)}.{rng.randrange(0, 10)}",
                _be_date(rng, year, year + 1),
                f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{year + 5}",
                str(rng.randrange(1, 300)),
                str(rng.randrange(1, 13)),
                tam,
                _thai(tam_name, rng),
                amp,
                _thai(amp_name, rng),
                prov,
                _thai(prov_name, rng),
                "A" if rng.random() < 0.9 else "C",
            )


_FISHER_COLUMNS = (
    "reg_no", "pid", "fullname", "sex", "birth_date", "reg_date", "house_no", "moo",
    "tambon_code", "tambon_name", "amphur_code", "amphur_name", "prov_code", "prov_name",
    "status",
)
_VESSEL_COLUMNS = (
    "vessel_no", "owner_pid", "vessel_name", "vessel_type", "gross_ton", "length_m",
    "reg_date", "licence_expire", "house_no", "moo", "tambon_code", "tambon_name",
    "amphur_code", "amphur_name", "prov_code", "prov_name", "status",
)
_SCHEMA = """
DROP TABLE IF EXISTS bench_meta, fisher_reg, vessel_reg, code_vessel_type;
CREATE TABLE fisher_reg (
    reg_no      VARCHAR(20) NOT NULL,
    pid         CHAR(17)    NOT NULL,
    fullname    VARCHAR(120),
    sex         CHAR(1),
    birth_date  CHAR(8),
    reg_date    VARCHAR(10),
    house_no    VARCHAR(20),
    moo         VARCHAR(2),
    tambon_code CHAR(6),
    tambon_name VARCHAR(60),
    amphur_code CHAR(4),
    amphur_name VARCHAR(60),
    prov_code   CHAR(2),
    prov_name   VARCHAR(60),
    status      CHAR(1)
);
CREATE TABLE vessel_reg (
    vessel_no      VARCHAR(20) NOT NULL,
    owner_pid      CHAR(17)    NOT NULL,
    vessel_name    VARCHAR(60),
    vessel_type    VARCHAR(2),
    gross_ton      VARCHAR(10),
    length_m       VARCHAR(8),
    reg_date       CHAR(8),
    licence_expire VARCHAR(10),
    house_no       VARCHAR(20),
    moo            VARCHAR(2),
    tambon_code    CHAR(6),
    tambon_name    VARCHAR(60),
    amphur_code    CHAR(4),
    amphur_name    VARCHAR(60),
    prov_code      CHAR(2),
    prov_name      VARCHAR(60),
    status         CHAR(1)
);
CREATE TABLE code_vessel_type (type_code CHAR(2) PRIMARY KEY, type_name VARCHAR(60));
CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_VESSEL_TYPES = (
    ("01", "เรืออวนลาก"), ("02", "เรืออวนล้อมจับ"), ("03", "เรืออวนติดตา"),
    ("04", "เรือลอบ"), ("05", "เรือเบ็ดราว"),
)


def database_dsn(server_dsn: str, database: str) -> str:
    base, _, _ = server_dsn.rpartition("/")
    return f"{base}/{database}"


async def _batches(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterator[tuple[object, ...]]
) -> int:
    total = 0
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            await conn.copy_records_to_table(table, records=batch, columns=list(columns))
            total += len(batch)
            batch = []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=list(columns))
        total += len(batch)
    return total


async def _is_seeded(dsn: str, ds: Dataset) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        have = await conn.fetchval(
            "SELECT value FROM bench_meta WHERE key = 'fingerprint'"
        ) if await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL") else None
        if have != ds.fingerprint:
            return False
        count = await conn.fetchval("SELECT count(*) FROM fisher_reg")
        owners = await conn.fetchval("SELECT count(*) FROM vessel_reg")
        return bool(count == ds.rows and owners == ds.owners * 10)
    finally:
        await conn.close()


async def ensure_seeded(
    server_dsn: str, database: str, ds: Dataset, log: Callable[[str], None] = print
) -> tuple[str, bool]:
    """Create and fill ``database`` unless it already holds this dataset; (dsn, seeded now)."""
    dsn = database_dsn(server_dsn, database)
    if await _is_seeded(dsn, ds):
        return dsn, False
    admin = await asyncpg.connect(server_dsn, timeout=10)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await admin.execute(
                f"CREATE DATABASE \"{database}\" ENCODING 'UTF8' TEMPLATE template0"
            )
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        log(f"seeding {ds.rows:,} citizens and {ds.owners * 10:,} vessels into {database} ...")
        await _fill(conn, ds)
    except BaseException:
        # interrupted or failed half way: leave no half-seeded database behind
        conn.terminate()
        with contextlib.suppress(Exception):
            await drop_database(server_dsn, database)
        raise
    finally:
        if not conn.is_closed():
            await conn.close()
    return dsn, True


async def _fill(conn: asyncpg.Connection, ds: Dataset) -> None:
    await conn.execute(_SCHEMA)
    await _batches(conn, "fisher_reg", _FISHER_COLUMNS, _fisher_rows(ds))
    await _batches(conn, "vessel_reg", _VESSEL_COLUMNS, _vessel_rows(ds))
    await conn.executemany("INSERT INTO code_vessel_type VALUES ($1, $2)", _VESSEL_TYPES)
    await conn.execute("CREATE INDEX fisher_reg_pid ON fisher_reg (pid)")
    await conn.execute("CREATE INDEX vessel_reg_owner_pid ON vessel_reg (owner_pid)")
    await conn.execute("ANALYZE fisher_reg")
    await conn.execute("ANALYZE vessel_reg")
    # written last: an interrupted seed has no fingerprint and is redone
    await conn.execute(
        "INSERT INTO bench_meta VALUES ('fingerprint', $1), ('rows', $2)",
        ds.fingerprint,
        str(ds.rows),
    )


async def drop_database(server_dsn: str, database: str) -> None:
    admin = await asyncpg.connect(server_dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()

