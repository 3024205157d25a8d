"""The demo legacy fisheries database really holds the quirks it promises.

Loads ``config/demo/fisheries.sql`` into an in-memory SQLite database with the
standard library only (``text_factory=bytes``, so TIS-620 bytes come back as
they are stored) and checks the data, the README's demo citizen IDs and that the
committed SQL is what the generator script makes.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO_DIR = Path(__file__).resolve().parents[1] / "config" / "demo"
SQL_FILE = DEMO_DIR / "fisheries.sql"
SCRIPT = DEMO_DIR / "make_fisheries_sql.py"
README = DEMO_DIR / "README.md"

ZWSP = "\u200b"
SARA_AM_DECOMPOSED = "\u0e4d\u0e32"
PID_PADDED = re.compile(rb"\d{13} {4}")
PID_DASHED = re.compile(rb"\d-\d{4}-\d{5}-\d{2}-\d")
PID_SPACED = re.compile(rb"\d \d{4} \d{5} \d{2} \d")
BE_YYYYMMDD = re.compile(rb"(\d{4})(\d{2})(\d{2})")
REG_DATE = re.compile(rb"(\d{2})/(\d{2})/(\d{4}|\d{2})")
GAP_EXPIRE = re.compile(rb"(\d{4})-(\d{2})-(\d{2})")

Row = tuple[bytes | None, ...]  # text_factory=bytes: every TEXT value comes back as bytes


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.text_factory = bytes
    try:
        conn.executescript(SQL_FILE.read_text(encoding="utf-8"))
        yield conn
    finally:
        conn.close()


def rows(db: sqlite3.Connection, sql: str) -> list[Row]:
    result: list[Row] = db.execute(sql).fetchall()
    return result


def count(db: sqlite3.Connection, table: str) -> int:
    (value,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert isinstance(value, int)
    return value


def column(db: sqlite3.Connection, sql: str) -> list[bytes]:
    values = [row[0] for row in rows(db, sql)]
    assert all(isinstance(v, bytes) for v in values)
    return [v for v in values if isinstance(v, bytes)]


def strip_pid(raw: bytes) -> str:
    return re.sub(rb"[\s-]", b"", raw).decode("ascii")


def pid_valid(pid: str) -> bool:
    if len(pid) != 13 or not pid.isdigit():
        return False
    total = sum(int(pid[i]) * (13 - i) for i in range(12))
    return (11 - total % 11) % 10 == int(pid[12])


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_thai(text: str) -> bool:
    return any("\u0e00" <= ch <= "\u0e7f" for ch in text)


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def run_script(*args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        timeout=120,
    )


def demo_pids() -> list[str]:
    result = run_script("--pids")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- shape


def test_tables_and_sizes(db: sqlite3.Connection) -> None:
    tables = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {b"FISHER_REG", b"AQUA_FARM", b"CODE_PROVINCE"} <= tables
    assert 280 <= count(db, "FISHER_REG") <= 320
    assert 380 <= count(db, "AQUA_FARM") <= 420
    indexes = column(db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    assert any(b"FISHER_REG (PID)" in s for s in indexes)
    assert any(b"AQUA_FARM (OWNER_PID)" in s for s in indexes)


def test_every_column_is_stored_as_text(db: sqlite3.Connection) -> None:
    for table in ("FISHER_REG", "AQUA_FARM", "CODE_PROVINCE"):
        names = [r[1] for r in rows(db, f"PRAGMA table_info({table})")]
        for name in names:
            assert isinstance(name, bytes)
            col = name.decode()
            kinds = {r[0] for r in rows(db, f"SELECT DISTINCT typeof({col}) FROM {table}")}
            assert kinds <= {b"text", b"null"}, (table, col, kinds)


# --------------------------------------------------------------------------- citizen IDs


def test_pids_come_in_legacy_forms(db: sqlite3.Connection) -> None:
    for sql in ("SELECT PID FROM FISHER_REG", "SELECT OWNER_PID FROM AQUA_FARM"):
        forms = Counter[str]()
        for raw in column(db, sql):
            if re.fullmatch(rb"\d{13}", raw):
                forms["plain"] += 1
            elif PID_DASHED.fullmatch(raw):
                forms["dashed"] += 1
            elif PID_PADDED.fullmatch(raw):
                forms["padded"] += 1
            elif PID_SPACED.fullmatch(raw):
                forms["spaced"] += 1
            else:
                pytest.fail(f"unexpected PID form {raw!r}")
        assert min(forms[f] for f in ("plain", "dashed", "padded", "spaced")) >= 10, forms
        assert forms["plain"] < sum(forms.values()) * 0.8


def test_all_pids_have_valid_checksums(db: sqlite3.Connection) -> None:
    pids = column(db, "SELECT PID FROM FISHER_REG UNION ALL SELECT OWNER_PID FROM AQUA_FARM")
    assert all(len(raw) <= 17 for raw in pids)
    bad = [raw for raw in pids if not pid_valid(strip_pid(raw))]
    assert not bad


def test_pid_classes_beyond_1_and_3(db: sqlite3.Connection) -> None:
    first = Counter(strip_pid(raw)[0] for raw in column(db, "SELECT PID FROM FISHER_REG"))
    assert first["1"] + first["3"] > 0.9 * sum(first.values())
    assert all(first[d] >= 2 for d in "01358"), first


def test_same_person_in_different_forms_across_tables(db: sqlite3.Connection) -> None:
    fisher = {strip_pid(r): r for r in column(db, "SELECT PID FROM FISHER_REG")}
    differing = 0
    for raw in column(db, "SELECT OWNER_PID FROM AQUA_FARM"):
        pid = strip_pid(raw)
        assert pid in fisher, f"farm owner {raw!r} has no FISHER_REG row"
        differing += fisher[pid] != raw
    assert differing >= 50


# --------------------------------------------------------------------------- text encodings


def classify(raw: bytes) -> str:
    """'ascii', 'utf8' (Thai, re-keyed rows) or 'tis620' (cp874 bytes)."""
    if raw.isascii():
        return "ascii"
    if is_utf8(raw):
        assert is_thai(raw.decode("utf-8")), raw
        return "utf8"
    text = raw.decode("cp874")
    assert is_thai(text), raw
    return "tis620"


def test_thai_text_is_tis620_bytes_with_a_fifth_rekeyed_in_utf8(db: sqlite3.Connection) -> None:
    names = column(db, "SELECT FULLNAME FROM FISHER_REG")
    kinds = Counter(classify(raw) for raw in names)
    assert kinds["ascii"] == 0
    share = kinds["utf8"] / len(names)
    assert 0.1 <= share <= 0.3, kinds
    farm_kinds = Counter(classify(raw) for raw in column(db, "SELECT FARM_NAME FROM AQUA_FARM"))
    assert farm_kinds["tis620"] > farm_kinds["utf8"] > 0, farm_kinds
    provinces = column(db, "SELECT PROV_NAME FROM CODE_PROVINCE")
    assert all(classify(raw) == "tis620" for raw in provinces)


def test_each_row_uses_one_encoding(db: sqlite3.Connection) -> None:
    sql = "SELECT FULLNAME, SOI, ROAD, TAMBON_NAME, AMPHUR_NAME, HOUSE_NO FROM FISHER_REG"
    for row in rows(db, sql):
        kinds = {classify(v) for v in row if isinstance(v, bytes)} - {"ascii"}
        assert len(kinds) == 1, row


def test_tis620_rows_are_not_utf8_and_decode_as_cp874(db: sqlite3.Connection) -> None:
    tis = [r for r in column(db, "SELECT FULLNAME FROM FISHER_REG") if not is_utf8(r)]
    assert len(tis) > 200
    for raw in tis:
        text = raw.decode("cp874")
        assert ZWSP not in text
        assert is_thai(text)
    decoded = [raw.decode("cp874") for raw in tis]
    assert sum("  " in t.strip() for t in decoded) >= 10  # double spaces
    assert sum(t != t.rstrip() for t in decoded) >= 10  # trailing spaces


def test_zero_width_space_and_decomposed_sara_am_only_in_utf8_rows(
    db: sqlite3.Connection,
) -> None:
    utf8 = [r.decode("utf-8") for r in column(db, "SELECT FULLNAME FROM FISHER_REG") if is_utf8(r)]
    assert sum(ZWSP in name for name in utf8) >= 3
    assert sum(SARA_AM_DECOMPOSED in name for name in utf8) >= 3
    tis = [
        r.decode("cp874") for r in column(db, "SELECT FULLNAME FROM FISHER_REG") if not is_utf8(r)
    ]
    assert not any(SARA_AM_DECOMPOSED in name for name in tis)


def test_titles_glued_to_names_and_sex_agrees(db: sqlite3.Connection) -> None:
    male = ("นาย", "จ.ส.อ.", "พ.จ.อ.", "ส.อ.", "จ.อ.", "ด.ต.", "ร.ต.")
    female = ("นางสาว", "นาง", "น.ส.")
    glued = 0
    titles = Counter[str]()
    for raw_name, raw_sex in rows(db, "SELECT FULLNAME, SEX FROM FISHER_REG"):
        assert isinstance(raw_name, bytes)
        name = raw_name.decode("utf-8") if is_utf8(raw_name) else raw_name.decode("cp874")
        title = next((t for t in (*female, *male) if name.startswith(t)), None)
        assert title is not None, name
        titles[title] += 1
        assert raw_sex == (b"1" if title in male else b"2"), name
        glued += is_thai(name[len(title)])
    assert glued > 250
    assert titles["น.ส."] and titles["นางสาว"] and titles["จ.ส.อ."]


# --------------------------------------------------------------------------- dates


def test_birth_dates_are_be_char8_with_legacy_gaps(db: sqlite3.Connection) -> None:
    births = column(db, "SELECT BIRTH_DATE FROM FISHER_REG")
    kinds = Counter[str]()
    for raw in births:
        if raw == b"":
            kinds["blank"] += 1
            continue
        m = BE_YYYYMMDD.fullmatch(raw)
        assert m, raw
        year, month, day = (int(g) for g in m.groups())
        if raw == b"00000000":
            kinds["zeros"] += 1
        elif month == 0:
            assert day == 0
            kinds["month00"] += 1
        elif day == 0:
            kinds["day00"] += 1
        else:
            assert 2480 <= year <= 2560, raw
            if (month, day) == (2, 29):
                assert is_leap(year - 543) and not is_leap(year), raw
                kinds["feb29"] += 1
            kinds["full"] += 1
    assert kinds["blank"] >= 2 and kinds["zeros"] >= 2 and kinds["month00"] >= 2, kinds
    assert kinds["day00"] >= 5 and kinds["feb29"] >= 2, kinds


def test_reg_dates_are_be_with_some_two_digit_years(db: sqlite3.Connection) -> None:
    lengths = Counter[int]()
    for raw in column(db, "SELECT REG_DATE FROM FISHER_REG"):
        m = REG_DATE.fullmatch(raw)
        assert m, raw
        lengths[len(m.group(3))] += 1
        if len(m.group(3)) == 4:
            assert 2530 <= int(m.group(3)) <= 2568, raw
    assert lengths[2] >= 5 and lengths[4] > 250, lengths
    assert b"29/02/2563" in column(db, "SELECT REG_DATE FROM FISHER_REG")


def test_gap_expiry_is_be_iso_text_or_null(db: sqlite3.Connection) -> None:
    expiries = [r[0] for r in rows(db, "SELECT GAP_EXPIRE FROM AQUA_FARM")]
    assert sum(e is None for e in expiries) >= 50
    for raw in expiries:
        if raw is not None:
            m = GAP_EXPIRE.fullmatch(raw)
            assert m and 2560 <= int(m.group(1)) <= 2575, raw
    assert b"2571-02-29" in expiries


def test_farm_legacy_columns(db: sqlite3.Connection) -> None:
    areas = column(db, "SELECT AREA_RAI FROM AQUA_FARM")
    assert any(a.startswith(b" ") for a in areas)
    assert any(re.fullmatch(rb"\d+\.\d+", a) for a in areas)
    species = Counter(column(db, "SELECT SPECIES_CODE FROM AQUA_FARM"))
    assert set(species) <= {b"01", b"02", b"03", b"04", b"05", b"1", b"2", b"3", b"4", b"5"}
    assert all(species[c] > 10 for c in (b"01", b"02", b"03", b"04", b"05"))


# --------------------------------------------------------------------------- codes


def test_administrative_codes_nest(db: sqlite3.Connection) -> None:
    provinces = set(column(db, "SELECT PROV_CODE FROM CODE_PROVINCE"))
    assert {b"11", b"20", b"74", b"83", b"90", b"91"} <= provinces
    sql = "SELECT TAMBON_CODE, AMPHUR_CODE, PROV_CODE FROM FISHER_REG"
    for tambon, amphur, prov in rows(db, sql):
        assert isinstance(tambon, bytes) and isinstance(amphur, bytes) and prov in provinces
        assert len(tambon) == 6 and len(amphur) == 4
        assert tambon.startswith(amphur) and amphur.startswith(prov)
    assert set(column(db, "SELECT PROV_CODE FROM AQUA_FARM")) <= provinces


# --------------------------------------------------------------------------- owners


def test_farm_owners(db: sqlite3.Connection) -> None:
    per_owner = Counter(strip_pid(r) for r in column(db, "SELECT OWNER_PID FROM AQUA_FARM"))
    counts = Counter(per_owner.values())
    assert counts[10] == 1
    assert max(per_owner.values()) == 10
    assert sum(counts[n] for n in (2, 3, 4)) >= 5
    (ten,) = [pid for pid, n in per_owner.items() if n == 10]
    forms = column(db, "SELECT OWNER_PID FROM AQUA_FARM")
    assert len({raw for raw in forms if strip_pid(raw) == ten}) == 4


# --------------------------------------------------------------------------- demo PIDs


def test_readme_lists_the_demo_pids(db: sqlite3.Connection) -> None:
    listed = demo_pids()
    assert len(listed) == 6 and len(set(listed)) == 6
    section = README.read_text(encoding="utf-8").split("## Demo citizen IDs", 1)[1]
    in_readme = re.findall(r"(?<!\d)\d{13}(?!\d)", section)
    assert list(dict.fromkeys(in_readme)) == listed
    assert all(pid_valid(pid) for pid in listed)

    fishers = {strip_pid(r) for r in column(db, "SELECT PID FROM FISHER_REG")}
    owners = {strip_pid(r) for r in column(db, "SELECT OWNER_PID FROM AQUA_FARM")}
    *with_record, without_record = listed
    assert all(pid in fishers for pid in with_record)
    assert without_record not in fishers | owners


def test_demo_pids_show_what_they_promise(db: sqlite3.Connection) -> None:
    feb29, rank, farms, partial, rekeyed, _ = demo_pids()

    def fisher_rows(pid: str) -> list[Row]:
        return [
            r
            for r in rows(db, "SELECT PID, FULLNAME, BIRTH_DATE, STATUS FROM FISHER_REG")
            if isinstance(r[0], bytes) and strip_pid(r[0]) == pid
        ]

    assert [r[2] for r in fisher_rows(feb29)] == [b"25270229"]
    rank_rows = fisher_rows(rank)
    assert sorted(r[3] or b"" for r in rank_rows) == [b"A", b"C"]
    assert all(
        isinstance(r[1], bytes) and r[1].decode("cp874").startswith("จ.ส.อ.") for r in rank_rows
    )
    owners = Counter(strip_pid(r) for r in column(db, "SELECT OWNER_PID FROM AQUA_FARM"))
    assert owners[farms] == 10
    ((raw_pid, _, birth, _),) = fisher_rows(partial)
    assert birth is not None and birth.endswith(b"00") and raw_pid is not None
    assert PID_SPACED.fullmatch(raw_pid)
    ((raw_pid, name, _, _),) = fisher_rows(rekeyed)
    assert raw_pid is not None and PID_DASHED.fullmatch(raw_pid)
    assert name is not None and is_utf8(name)
    assert ZWSP in name.decode("utf-8") and SARA_AM_DECOMPOSED in name.decode("utf-8")


# --------------------------------------------------------------------------- generator


def test_committed_sql_is_up_to_date() -> None:
    result = run_script("--check")
    assert result.returncode == 0, result.stderr


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    script = tmp_path / SCRIPT.name
    shutil.copy(SCRIPT, script)
    (tmp_path / SQL_FILE.name).write_text("-- stale\n", encoding="utf-8")
    assert run_script("--check", script=script).returncode == 1
    assert run_script(script=script).returncode == 0
    assert run_script("--check", script=script).returncode == 0
    assert (tmp_path / SQL_FILE.name).read_bytes() == SQL_FILE.read_bytes()
