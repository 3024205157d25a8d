#!/usr/bin/env python3
"""Generate ``fisheries.sql``, the demo "legacy fisheries database".

The gateway's SQLite adapter runs ``fisheries.sql`` with ``sqlite3``'s
``executescript()`` to build the demo database the first time it starts.  The
data are invented but shaped like an old Department of Fisheries system that
was imported, re-keyed and patched over twenty years, so that the demo shows
the gateway coping with what real legacy rows look like.  Nothing in the file
is a real person: citizen IDs are random numbers that pass the checksum.

Tables (legacy style: upper-case names, CHAR/VARCHAR columns, which SQLite
stores as TEXT):

* ``FISHER_REG``    fisher registration (ทะเบียนชาวประมง), about 300 rows;
* ``AQUA_FARM``     aquaculture farm registration (ทะเบียนฟาร์มเพาะเลี้ยงสัตว์น้ำ), 400 rows;
* ``CODE_PROVINCE``, ``CODE_FISHER_TYPE``, ``CODE_SPECIES``: lookup tables.

Quirks, and why each one is there:

* Citizen IDs (PID, OWNER_PID, CHAR(17)) in four forms: plain
  ``3100501234567``, dashed ``3-1005-01234-56-7``, space-padded to the column
  width, and grouped with spaces ``3 1005 01234 56 7``.  Clerks typed what the
  ID card shows, and CHAR columns pad.  The two tables use different forms for
  the same person, so a lookup or join has to normalise.  All IDs pass the
  mod-11 checksum; first digits are mostly 1 and 3 with a few 5, 8 and 0
  (classes a gateway must not reject by prefix).
* Thai text stored as TIS-620/cp874 bytes inside TEXT columns, written as
  ``CAST(X'..' AS TEXT)``: an old import copied the bytes without converting
  them, so the stored values are not valid UTF-8 and must be decoded as cp874.
  About 20% of the rows were re-keyed by a newer system and hold UTF-8 Thai.
  Only those UTF-8 rows carry a zero-width space (U+200B; cp874 cannot encode
  it) or a decomposed sara am (U+0E4D U+0E32 instead of U+0E33), the marks of
  text pasted from web forms and typed on some keyboards.  The TIS-620 rows
  instead have double spaces between first and last name and trailing spaces.
* FULLNAME holds the title glued to the first name (``นายสมชาย  ใจดี``,
  ``น.ส.…``, ranks such as ``จ.ส.อ.``); a few rows have a space after the
  title.  SEX ('1' male, '2' female) agrees with the title.
* BIRTH_DATE is CHAR(8) Buddhist Era ``YYYYMMDD`` with ``YYYYMM00`` (unknown
  day), ``YYYY0000``, ``00000000`` and blank values, and 29 February of BE
  years whose CE year is a leap year (2527 BE = 1984 CE), a date that a DATE
  column read as a Gregorian year would refuse.
* REG_DATE is ``DD/MM/YYYY`` BE with a few two-digit years (``15/01/61``) left
  by an older front end; one falls on 29/02/2563.
* Some people registered twice: a cancelled ('C') old row and an active ('A')
  new one, often with the PID typed in a different form.
* Addresses: HOUSE_NO such as ``99/1`` (two in Thai digits), MOO '0'..'12'
  or blank, SOI/ROAD often blank or ``-``; DOPA-style 2/4/6-digit province,
  district and subdistrict codes, each code starting with its parent's code.
* AQUA_FARM: AREA_RAI is text (``'12.5'``, ``' 3'``, ``'3.00'``, blank);
  GAP_EXPIRE is ``YYYY-MM-DD`` with a BE year, as a DATE column dumped to
  text leaves it (including ``2571-02-29``), or NULL; a few SPECIES_CODE
  values lost their leading zero (``'1'`` for ``'01'``) in a spreadsheet.
  One owner has exactly 10 farms, many have 2-4.

The output is deterministic (``random.Random(2567)``) and uses only the
standard library.

Usage::

    python config/demo/make_fisheries_sql.py           # rewrite fisheries.sql
    python config/demo/make_fisheries_sql.py --check   # exit 1 if fisheries.sql is stale
    python config/demo/make_fisheries_sql.py --pids    # print the demo citizen IDs
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "fisheries.sql"
SEED = 2567
BE_OFFSET = 543  # BE year = CE year + 543
N_RANDOM_PERSONS = 288  # + 5 demo persons + 7 second registrations = 300 FISHER_REG rows
N_FARMS = 400
PID_WIDTH = 17

THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
ZWSP = "\u200b"
SARA_AM = "\u0e33"
SARA_AM_DECOMPOSED = "\u0e4d\u0e32"


# --------------------------------------------------------------------------- geography


class Tambon(NamedTuple):
    code: str
    name: str


class Amphur(NamedTuple):
    code: str
    name: str
    tambons: tuple[Tambon, ...]


class Province(NamedTuple):
    code: str
    name: str
    roads: tuple[str, ...]
    amphurs: tuple[Amphur, ...]


def _province(
    code: str, name: str, roads: tuple[str, ...], amphurs: list[tuple[str, str, list[str]]]
) -> Province:
    """``amphurs`` is [(2-digit district suffix, name, ["NN name", ...])]."""
    built = []
    for suffix, amphur_name, tambons in amphurs:
        amphur_code = code + suffix
        built.append(
            Amphur(
                amphur_code,
                amphur_name,
                tuple(Tambon(amphur_code + t[:2], t[3:]) for t in tambons),
            )
        )
    return Province(code, name, roads, tuple(built))


PROVINCES: tuple[Province, ...] = (
    _province("11", "สมุทรปราการ", ("สุขุมวิท", "ศรีนครินทร์", "ปู่เจ้าสมิงพราย"), [
        ("01", "เมืองสมุทรปราการ", ["01 ปากน้ำ", "04 ท้ายบ้าน", "12 บางปู"]),
        ("02", "บางบ่อ", ["01 บางบ่อ", "06 คลองด่าน"]),
        ("05", "พระสมุทรเจดีย์", ["01 นาเกลือ", "02 บ้านคลองสวน", "03 แหลมฟ้าผ่า"]),
    ]),
    _province("20", "ชลบุรี", ("สุขุมวิท", "บางแสนสาย 2", "เลียบชายฝั่ง"), [
        ("01", "เมืองชลบุรี", ["01 บางปลาสร้อย", "04 แสนสุข", "16 อ่างศิลา"]),
        ("07", "ศรีราชา", ["01 ศรีราชา", "03 บางพระ"]),
        ("09", "สัตหีบ", ["01 สัตหีบ", "04 บางเสร่", "05 แสมสาร"]),
    ]),
    _province("21", "ระยอง", ("สุขุมวิท", "ริมทะเล", "ราษฎร์บำรุง"), [
        ("01", "เมืองระยอง", ["01 ท่าประดู่", "04 ปากน้ำ", "05 เพ"]),
        ("02", "บ้านฉาง", ["01 บ้านฉาง", "03 สำนักท้อน"]),
        ("03", "แกลง", ["01 ทางเกวียน", "06 ปากน้ำประแส"]),
    ]),
    _province("74", "สมุทรสาคร", ("เพชรเกษม", "พระรามที่ 2", "เศรษฐกิจ 1"), [
        ("01", "เมืองสมุทรสาคร", ["01 มหาชัย", "02 ท่าฉลอม", "03 โกรกกราก", "13 พันท้ายนรสิงห์"]),
        ("02", "กระทุ่มแบน", ["01 ตลาดกระทุ่มแบน", "06 อ้อมน้อย"]),
    ]),
    _province("75", "สมุทรสงคราม", ("พระรามที่ 2", "เอกชัย"), [
        ("01", "เมืองสมุทรสงคราม", ["01 แม่กลอง", "06 ท้ายหาด", "07 แหลมใหญ่", "09 คลองโคน"]),
        ("03", "อัมพวา", ["01 อัมพวา", "02 สวนหลวง", "03 ท่าคา"]),
    ]),
    _province("76", "เพชรบุรี", ("เพชรเกษม", "บ้านแหลม-บางตะบูน"), [
        ("05", "ชะอำ", ["01 ชะอำ", "02 บางเก่า"]),
        ("06", "บ้านแหลม", ["01 บ้านแหลม", "03 ปากทะเล", "05 แหลมผักเบี้ย", "06 บางตะบูน"]),
    ]),
    _province("77", "ประจวบคีรีขันธ์", ("เพชรเกษม", "สละชีพ"), [
        ("01", "เมืองประจวบคีรีขันธ์", ["01 ประจวบคีรีขันธ์", "02 เกาะหลัก", "03 คลองวาฬ"]),
        ("04", "บางสะพาน", ["01 กำเนิดนพคุณ", "02 พงศ์ประศาสน์", "05 แม่รำพึง"]),
        ("07", "หัวหิน", ["01 หัวหิน", "06 หนองแก"]),
    ]),
    _province("80", "นครศรีธรรมราช", ("ราชดำเนิน", "ปากพนัง-ชะอวด"), [
        ("01", "เมืองนครศรีธรรมราช", ["01 ในเมือง", "05 ปากพูน", "08 ท่าซัก"]),
        ("08", "ท่าศาลา", ["01 ท่าศาลา", "06 กลาย"]),
        ("11", "ปากพนัง", ["01 ปากพนัง", "08 ปากพนังฝั่งตะวันตก", "14 แหลมตะลุมพุก"]),
    ]),
    _province("83", "ภูเก็ต", ("เทพกระษัตรี", "เจ้าฟ้าตะวันออก", "วิเศษ"), [
        ("01", "เมืองภูเก็ต", ["01 ตลาดใหญ่", "05 วิชิต", "06 ฉลอง", "07 ราไวย์"]),
        ("02", "กะทู้", ["02 ป่าตอง"]),
        ("03", "ถลาง", ["04 ป่าคลอก", "05 ไม้ขาว", "06 สาคู"]),
    ]),
    _province("84", "สุราษฎร์ธานี", ("ตลาดใหม่", "ชนเกษม"), [
        ("01", "เมืองสุราษฎร์ธานี", ["01 ตลาด", "04 บางกุ้ง"]),
        ("04", "เกาะสมุย", ["01 อ่างทอง", "02 ลิปะน้อย", "04 หน้าเมือง"]),
        ("06", "ไชยา", ["01 ตลาดไชยา", "07 พุมเรียง"]),
    ]),
    _province("90", "สงขลา", ("ราษฎร์อุทิศ", "ไทรบุรี", "สงขลา-ระโนด"), [
        ("01", "เมืองสงขลา", ["01 บ่อยาง", "02 เขารูปช้าง", "06 เกาะยอ"]),
        ("02", "สทิงพระ", ["01 จะทิ้งพระ", "04 บ่อดาน"]),
        ("03", "จะนะ", ["01 บ้านนา", "06 นาทับ"]),
    ]),
    _province("91", "สตูล", ("สตูลธานี", "บุรีวานิช"), [
        ("01", "เมืองสตูล", ["01 พิมาน", "02 คลองขุด", "06 เกาะสาหร่าย", "07 ตันหยงโป"]),
        ("07", "ละงู", ["01 กำแพง", "02 ละงู", "06 แหลมสน"]),
    ]),
    _province("92", "ตรัง", ("พระราม 6", "ตรัง-ปะเหลียน"), [
        ("01", "เมืองตรัง", ["01 ทับเที่ยง", "10 บางรัก"]),
        ("02", "กันตัง", ["01 กันตัง", "05 บ่อน้ำร้อน", "12 เกาะลิบง"]),
        ("05", "สิเกา", ["01 บ่อหิน", "03 ไม้ฝาด"]),
    ]),
)
PROVINCE_BY_CODE = {p.code: p for p in PROVINCES}

FISHER_TYPES = (("1", "ประมงพื้นบ้าน"), ("2", "ประมงพาณิชย์"), ("3", "แรงงานประมง"))
SPECIES = (
    ("01", "กุ้งขาวแวนนาไม"),
    ("02", "กุ้งกุลาดำ"),
    ("03", "ปลานิล"),
    ("04", "ปลากะพงขาว"),
    ("05", "หอยแมลงภู่"),
)

# --------------------------------------------------------------------------- names

MALE_FIRST = (
    "สมชาย", "สมศักดิ์", "ประเสริฐ", "สุชาติ", "วิชัย", "บุญมี", "สมพงษ์", "ประยุทธ", "ชัยวัฒน์",
    "สุรชัย", "อนันต์", "มานพ", "ธนากร", "ณัฐพล", "กิตติพงษ์", "วีระ", "สมบัติ", "ไพโรจน์",
    "สำราญ", "กำพล", "จำลอง", "คำรณ", "ธีรวัฒน์", "อภิชาติ", "เอกชัย", "ยุทธนา", "ปรีชา",
    "สุวิทย์", "บรรจง", "เฉลิม", "สนิท", "ทองใบ", "อับดุลเลาะ", "มะหะหมัด", "ยูโสบ", "หมาดหลี",
)
FEMALE_FIRST = (
    "มาลี", "สมศรี", "บุญเรือน", "สุนีย์", "วันเพ็ญ", "จันทร์เพ็ญ", "กาญจนา", "สุดารัตน์",
    "นงลักษณ์", "ประไพ", "อำไพ", "คำปุน", "จำปา", "ลำดวน", "สำเนียง", "รัชนี", "พรทิพย์",
    "ศิริพร", "อรุณี", "ละเอียด", "เพ็ญศรี", "ยุพิน", "วิไลวรรณ", "ฟาตีเมาะ", "รอฮานี", "ปิยะนุช",
)
LAST_NAMES = (
    "ใจดี", "ศรีสุข", "ทองคำ", "แก้วมณี", "บุญมา", "สุขสวัสดิ์", "รักษาทรัพย์", "ประเสริฐสุข",
    "พันธ์ทอง", "วงศ์สวัสดิ์", "ชัยมงคล", "เรืองศรี", "น้ำใจดี", "คำภา", "ท้าวคำ", "ลำเจียก",
    "ศรีสมุทร", "ทะเลทอง", "สมุทรสาร", "แหลมทอง", "บางแก้ว", "เกาะแก้ว", "หลีเส็น", "เจะหลง",
    "หมัดอะดั้ม", "สาและ", "โต๊ะหลัง", "ยอดดำเนิน", "ดำรงค์ศักดิ์", "นาคสวัสดิ์", "จันทร์หอม",
    "สุวรรณรัตน์", "พรหมแก้ว", "อินทร์แก้ว", "ทองเนื้อดี", "ปานดำ",
)
# Last names with sara am, for the decomposed-sara-am rows.
SARA_AM_LAST = ("น้ำใจดี", "คำภา", "ท้าวคำ", "ยอดดำเนิน", "ปานดำ", "ดำรงค์ศักดิ์")
# Workers from neighbouring countries (ID classes 0 and 8) keep a Thai-script name.
FOREIGN_MALE_FIRST = ("อ่อง", "มิน", "ซอ", "จอ", "ทุน", "โก")
FOREIGN_FEMALE_FIRST = ("ซู", "เอ", "มะ", "ขิ่น")
FOREIGN_LAST = ("ลวิน", "ออง", "วิน", "ทู", "มินต์", "เต็ง")

MALE_RANKS = ("จ.ส.อ.", "พ.จ.อ.", "ส.อ.", "จ.อ.", "ด.ต.", "ร.ต.")
SOI_NAMES = ("ร่วมใจ", "เทศบาล 5", "ประมงสามัคคี", "ซอยท่าเรือ", "3", "12", "วัดกลาง", "มิตรภาพ")


# --------------------------------------------------------------------------- helpers


def check_digit(first12: str) -> str:
    """Thai citizen ID check digit: (11 - sum(d_i * (14 - i)) mod 11) mod 10."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return str((11 - total % 11) % 10)


def make_pid(first12: str) -> str:
    assert len(first12) == 12 and first12.isdigit()
    return first12 + check_digit(first12)


def pid_form(pid: str, form: str) -> str:
    """The citizen ID as a legacy CHAR(17) column holds it."""
    groups = (pid[0], pid[1:5], pid[5:10], pid[10:12], pid[12])
    if form == "plain":
        return pid
    if form == "dashed":
        return "-".join(groups)
    if form == "spaced":
        return " ".join(groups)
    if form == "padded":
        return pid.ljust(PID_WIDTH)
    raise ValueError(form)


def random_pid_form(rng: random.Random) -> str:
    return rng.choices(("plain", "dashed", "padded", "spaced"), weights=(55, 20, 15, 10))[0]


def be_yyyymmdd(d: dt.date) -> str:
    return f"{d.year + BE_OFFSET:04d}{d.month:02d}{d.day:02d}"


def be_slashed(d: dt.date, *, two_digit_year: bool = False) -> str:
    year = d.year + BE_OFFSET
    y = f"{year % 100:02d}" if two_digit_year else f"{year:04d}"
    return f"{d.day:02d}/{d.month:02d}/{y}"


def be_iso(d: dt.date) -> str:
    return f"{d.year + BE_OFFSET:04d}-{d.month:02d}-{d.day:02d}"


def random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1)
    end = dt.date(last_year, 12, 31)
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sql_text(value: str | None, *, tis620: bool = False) -> str:
    """An SQL literal; Thai text in a TIS-620 row becomes CAST(X'..' AS TEXT)."""
    if value is None:
        return "NULL"
    if tis620 and not value.isascii():
        data = value.encode("cp874")
        if is_utf8(data):  # would not demonstrate the quirk
            raise ValueError(f"TIS-620 bytes of {value!r} happen to be valid UTF-8")
        return f"CAST(X'{data.hex().upper()}' AS TEXT)"
    return "'" + value.replace("'", "''") + "'"


def shown(value: str) -> str:
    """A value for a row comment: quoted, invisible characters spelled out."""
    value = value.replace(ZWSP, "<U+200B>").replace(SARA_AM_DECOMPOSED, "<U+0E4D U+0E32>")
    return '"' + value + '"'


# --------------------------------------------------------------------------- people


@dataclass
class Person:
    pid: str
    sex: str  # '1' male, '2' female
    title: str
    first: str
    last: str
    birth: str  # BIRTH_DATE as stored
    birth_date: dt.date | None
    province: Province
    amphur: Amphur
    tambon: Tambon
    house_no: str
    moo: str
    soi: str
    road: str
    fisher_type: str
    utf8: bool  # the active row was re-keyed by a newer system
    # FULLNAME quirks
    title_sep: str = ""
    name_sep: str = " "
    trailing: str = ""
    zwsp: str | None = None  # "title", "first" or "end" (UTF-8 rows only)
    decomposed: bool = False  # U+0E4D U+0E32 for sara am (UTF-8 rows only)
    notes: list[str] = field(default_factory=list)

    def fullname(self, *, utf8: bool) -> str:
        title_sep = self.title_sep
        first = self.first
        last = self.last
        end = ""
        if utf8:
            name_sep = " "
            if self.zwsp == "title":
                title_sep = ZWSP
            elif self.zwsp == "first":
                first += ZWSP
            elif self.zwsp == "end":
                end = ZWSP
            if self.decomposed:
                first = first.replace(SARA_AM, SARA_AM_DECOMPOSED)
                last = last.replace(SARA_AM, SARA_AM_DECOMPOSED)
        else:
            name_sep = self.name_sep
            end = self.trailing
        return f"{self.title}{title_sep}{first}{name_sep}{last}{end}"


@dataclass
class Registration:
    person: Person
    reg_date: dt.date
    two_digit_year: bool
    status: str
    pid_form: str
    utf8: bool
    reg_no: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Farm:
    owner: Person
    pid_form: str
    province: Province
    name: str
    species_code: str
    area_rai: str
    gap_cert_no: str | None
    gap_expire: str | None
    utf8: bool
    registered: dt.date
    farm_id: str = ""


class Demo(NamedTuple):
    pid: str
    shows: str


def _find(code: str) -> tuple[Province, Amphur, Tambon]:
    province = PROVINCE_BY_CODE[code[:2]]
    amphur = next(a for a in province.amphurs if a.code == code[:4])
    tambon = next(t for t in amphur.tambons if t.code == code)
    return province, amphur, tambon


def _demo_person(
    first12: str, title: str, first: str, last: str, sex: str, birth: str, tambon_code: str,
    house_no: str, moo: str, fisher_type: str, *, utf8: bool = False,
) -> Person:
    province, amphur, tambon = _find(tambon_code)
    year, month, day = int(birth[:4]) - BE_OFFSET, int(birth[4:6]), int(birth[6:])
    birth_date = dt.date(year, month, day or 1)
    return Person(
        make_pid(first12), sex, title, first, last, birth, birth_date, province, amphur, tambon,
        house_no, moo, "", "", fisher_type, utf8,
    )


# The five demo people: hand-made rows with known quirks, listed in README.md.
D_FEB29 = _demo_person(
    "174010023456", "นาย", "สมชาย", "ใจดี", "1", "25270229", "740102", "45/2", "3", "1"
)
D_RANK = _demo_person(
    "383010045712", "จ.ส.อ.", "สมศักดิ์", "ทองคำ", "1", "25120817", "830304", "112", "5", "2"
)
D_FARMS = _demo_person(
    "321010011890", "นางสาว", "มาลี", "ศรีสุข", "2", "25200311", "210104", "99/1", "2", "1"
)
D_PARTIAL = _demo_person(
    "390010034567", "นาง", "บุญเรือน", "แก้วมณี", "2", "25130500", "900106", "7", "4", "1"
)
D_REKEYED = _demo_person(
    "175010007823", "นาย", "กำพล", "น้ำใจดี", "1", "25300704", "750107", "23/7", "8", "1",
    utf8=True,
)
D_RANK.name_sep, D_RANK.trailing = "  ", "   "
D_RANK.soi, D_RANK.road = "-", "เทพกระษัตรี"
D_PARTIAL.name_sep = "  "
D_REKEYED.zwsp, D_REKEYED.decomposed = "first", True
D_REKEYED.road = "พระรามที่ 2"

DEMOS: tuple[Demo, ...] = (
    Demo(D_FEB29.pid, "BIRTH_DATE 25270229: 29 Feb 2527 BE = 1984-02-29 CE, "
                      "a day that 2527 read as a CE year does not have"),
    Demo(D_RANK.pid, "rank glued to the name 'จ.ส.อ.สมศักดิ์  ทองคำ   ' (double and trailing "
                     "spaces), PID space-padded, plus a cancelled old row dated '03/06/45' "
                     f"with the PID dashed '{pid_form(D_RANK.pid, 'dashed')}'"),
    Demo(D_FARMS.pid, "'นางสาวมาลี ศรีสุข' owns exactly 10 farms in 3 provinces, OWNER_PID "
                      "in all four forms, GAP_EXPIRE 2571-02-29 on one, NULL on four"),
    Demo(D_PARTIAL.pid, "BIRTH_DATE 25130500: partial date with 00 day (May 2513 BE = 1970), "
                        f"PID stored with spaces '{pid_form(D_PARTIAL.pid, 'spaced')}', 2 farms"),
    Demo(D_REKEYED.pid, f"PID dashed in the column '{pid_form(D_REKEYED.pid, 'dashed')}', "
                        "re-keyed UTF-8 row 'นายกำพล น้ำใจดี' with a zero-width space and "
                        "decomposed sara am"),
)
for _demo in (D_FEB29, D_RANK, D_FARMS, D_PARTIAL, D_REKEYED):
    _demo.notes.append("demo PID, see README.md")
NO_RECORD_PID = make_pid("311050099999")


def generate_people(rng: random.Random) -> list[Person]:
    taken = {d.pid for d in DEMOS} | {NO_RECORD_PID}
    n = N_RANDOM_PERSONS
    # Citizen ID classes other than 1 and 3, placed at random.
    classes: list[str | None] = list("55558888000")
    classes += [None] * (n - len(classes))
    rng.shuffle(classes)
    birth_quirks: dict[int, str] = {}
    picks = rng.sample(range(n), 15)
    for i, quirk in zip(
        picks,
        ["day00"] * 8 + ["month00"] * 2 + ["zeros"] * 2 + ["blank"] * 2 + ["feb29"],
        strict=True,
    ):
        birth_quirks[i] = quirk

    people: list[Person] = []
    for i in range(n):
        cls = classes[i]
        foreign = cls in ("0", "8")
        sex = "1" if rng.random() < 0.72 else "2"
        if foreign:
            title = "นาย" if sex == "1" else rng.choice(("นาง", "นางสาว"))
            first = rng.choice(FOREIGN_MALE_FIRST if sex == "1" else FOREIGN_FEMALE_FIRST)
            last = rng.choice(FOREIGN_LAST)
        else:
            if sex == "1":
                title = rng.choice(MALE_RANKS) if rng.random() < 0.06 else "นาย"
                first = rng.choice(MALE_FIRST)
            else:
                title = rng.choices(("นาง", "นางสาว", "น.ส."), weights=(45, 35, 20))[0]
                first = rng.choice(FEMALE_FIRST)
            last = rng.choice(LAST_NAMES)

        kind = birth_quirks.get(i)
        birth_date = random_date(rng, 1950, 2005)
        if kind == "feb29":
            birth_date = dt.date(1980, 2, 29)  # 2523 BE
        birth = be_yyyymmdd(birth_date)
        if kind == "day00":
            birth = birth[:6] + "00"
        elif kind == "month00":
            birth = birth[:4] + "0000"
        elif kind == "zeros":
            birth = "00000000"
        elif kind == "blank":
            birth = ""

        province = rng.choice(PROVINCES)
        amphur = rng.choice(province.amphurs)
        tambon = rng.choice(amphur.tambons)

        while True:
            if foreign:
                assert cls is not None
                first12 = cls + f"{rng.randrange(10**11):011d}"
            else:
                digit = cls or ("1" if birth_date.year >= 1984 else "3")
                office = amphur.code if rng.random() < 0.8 else rng.choice(
                    rng.choice(PROVINCES).amphurs
                ).code
                first12 = digit + office + f"{rng.randrange(10**7):07d}"
            pid = make_pid(first12)
            if pid not in taken:
                taken.add(pid)
                break

        house_no = str(rng.randint(1, 250))
        if rng.random() < 0.35:
            house_no += f"/{rng.randint(1, 30)}"
        moo = rng.choices(("", "0", str(rng.randint(1, 12))), weights=(10, 5, 85))[0]
        soi = rng.choices(("", "-", rng.choice(SOI_NAMES)), weights=(60, 10, 30))[0]
        road = rng.choices(("", "-", rng.choice(province.roads)), weights=(50, 5, 45))[0]
        fisher_type = rng.choices(("1", "2", "3"), weights=(62, 26, 12))[0]
        if foreign:
            fisher_type = "3"  # crew on someone else's boat
        person = Person(
            pid, sex, title, first, last, birth, None if kind else birth_date, province, amphur,
            tambon, house_no, moo, soi, road, fisher_type, utf8=rng.random() < 0.2,
        )
        if kind:
            person.notes.append(f"BIRTH_DATE {birth or 'blank'}")
        people.append(person)

    # FULLNAME quirks.  TIS-620 rows: double spaces, trailing spaces, a space
    # after the title.  UTF-8 rows: zero-width space, decomposed sara am.
    tis_rows = [p for p in people if not p.utf8]
    utf8_rows = [p for p in people if p.utf8]
    for p in tis_rows:
        if rng.random() < 0.15:
            p.name_sep = "  "
        if rng.random() < 0.10:
            p.trailing = " " * rng.randint(1, 4)
    for p in rng.sample(tis_rows, 3):
        p.title_sep = " "
    special = rng.sample(utf8_rows, 8)
    for p, where in zip(special[:4], ("title", "first", "end", "first"), strict=True):
        p.zwsp = where
    for p in special[4:]:
        p.last = rng.choice(SARA_AM_LAST)
        p.decomposed = True
    # Thai digits in two house numbers (TIS-620 rows).
    for p in rng.sample(tis_rows, 2):
        p.house_no = p.house_no.translate(THAI_DIGITS)
        p.notes.append("HOUSE_NO in Thai digits")
    return people


def generate_registrations(rng: random.Random, people: list[Person]) -> list[Registration]:
    regs: list[Registration] = []
    n = len(people)
    two_digit = set(rng.sample(range(n), 10))
    feb29 = rng.choice([i for i in range(n) if i not in two_digit])
    for i, p in enumerate(people):
        born = p.birth_date.year if p.birth_date else 1960
        first_year = max(1997, born + 15)
        reg_date = random_date(rng, first_year, 2024)
        if i == feb29:
            reg_date = dt.date(2020, 2, 29)  # 29/02/2563
        status = "C" if rng.random() < 0.08 else "A"
        reg = Registration(p, reg_date, i in two_digit, status, random_pid_form(rng), p.utf8)
        if i == feb29:
            reg.notes.append("REG_DATE 29/02/2563")
        regs.append(reg)

    # Re-registrations: an old cancelled row, typed in another PID form.
    for reg in rng.sample([r for r in regs if r.status == "A"], 6):
        old_date = reg.reg_date - dt.timedelta(days=rng.randint(3 * 365, 10 * 365))
        forms = [f for f in ("plain", "dashed", "padded", "spaced") if f != reg.pid_form]
        regs.append(
            Registration(reg.person, old_date, rng.random() < 0.5, "C", rng.choice(forms), False)
        )
    return regs


def demo_registrations() -> list[Registration]:
    return [
        Registration(D_FEB29, dt.date(2018, 1, 15), False, "A", "plain", False),
        Registration(D_RANK, dt.date(2002, 6, 3), True, "C", "dashed", False),
        Registration(D_RANK, dt.date(2019, 11, 12), False, "A", "padded", False),
        Registration(D_FARMS, dt.date(2017, 10, 1), False, "A", "plain", False),
        Registration(D_PARTIAL, dt.date(2012, 4, 20), False, "A", "spaced", False),
        Registration(D_REKEYED, dt.date(2021, 5, 5), False, "A", "dashed", True),
    ]


# --------------------------------------------------------------------------- farms


def farm_name(rng: random.Random, owner: Person, species: str, tambon: str) -> str:
    kind = {"01": "ฟาร์มกุ้ง", "02": "ฟาร์มกุ้ง", "03": "บ่อปลา", "04": "กระชังปลา",
            "05": "แพหอย"}[species]
    pattern = rng.randrange(5)
    if pattern == 0:
        return f"{kind}{owner.first}"
    if pattern == 1:
        return f"{kind}{owner.last}"
    if pattern == 2:
        return f"{owner.first}ฟาร์ม"
    if pattern == 3:
        return f"{kind} {tambon}"
    return f"ฟาร์ม ส.{owner.last}"


def area_rai(rng: random.Random, species: str) -> str:
    size = rng.uniform(1, 10) if species == "05" else rng.uniform(1, 30)
    style = rng.randrange(5)
    if style == 0:
        return f"{size:.1f}"
    if style == 1:
        return f" {round(size)}"  # right-aligned number left over from a fixed-width export
    if style == 2:
        return f"{size:.2f}"
    if style == 3:
        return str(round(size))
    return f"{round(size * 4) / 4:g}"


def make_farm(
    rng: random.Random, owner: Person, form: str, province: Province, *, utf8: bool,
    issued: dt.date | None,
) -> Farm:
    species = rng.choices([c for c, _ in SPECIES], weights=(40, 10, 20, 15, 15))[0]
    tambon = rng.choice(rng.choice(province.amphurs).tambons).name
    name = farm_name(rng, owner, species, tambon)
    cert = expire = None
    if issued is not None:
        # A three-year certificate ends the day before the anniversary.
        day = 28 if (issued.month, issued.day) == (2, 29) else issued.day
        anniversary = dt.date(issued.year + 3, issued.month, day)
        expire = be_iso(anniversary - dt.timedelta(days=1))
        cert = "GAP"  # numbered later, in FARM_ID order
    registered = issued or random_date(rng, 2010, 2024)
    return Farm(
        owner, form, province, name, species, area_rai(rng, species), cert, expire, utf8,
        registered,
    )


def generate_farms(rng: random.Random, people: list[Person]) -> list[Farm]:
    def random_issue() -> dt.date | None:
        return random_date(rng, 2018, 2025) if rng.random() < 0.62 else None

    farms: list[Farm] = []
    # The 10-farm owner: every PID form, three provinces, one 29 Feb expiry.
    home = D_FARMS.province
    provinces = [home] * 6 + [PROVINCE_BY_CODE["20"]] * 2 + [PROVINCE_BY_CODE["74"]] * 2
    forms = ["plain", "dashed", "padded", "spaced"] * 2 + ["plain", "dashed"]
    issues: list[dt.date | None] = [
        dt.date(2025, 3, 1), None, dt.date(2022, 6, 15), None, dt.date(2019, 1, 10),
        dt.date(2023, 8, 1), None, dt.date(2024, 11, 20), dt.date(2021, 4, 2), None,
    ]
    for prov, form, issued in zip(provinces, forms, issues, strict=True):
        farms.append(make_farm(rng, D_FARMS, form, prov, utf8=False, issued=issued))
    farms.append(make_farm(rng, D_FEB29, "dashed", D_FEB29.province, utf8=False,
                           issued=dt.date(2023, 5, 9)))
    for issued in (dt.date(2020, 9, 1), None):
        farms.append(make_farm(rng, D_PARTIAL, "plain", D_PARTIAL.province, utf8=False,
                               issued=issued))
    farms.append(make_farm(rng, D_REKEYED, "padded", D_REKEYED.province, utf8=True,
                           issued=dt.date(2024, 2, 1)))

    # Other owners: Thai fishers only (not the foreign workers), 2-4 farms for many.
    candidates = [p for p in people if p.pid[0] not in "08"]
    counts = [4] * 8 + [3] * 25 + [2] * 60
    singles = N_FARMS - len(farms) - sum(counts)
    owners = rng.sample(candidates, len(counts) + singles)
    for owner, count in zip(owners, counts + [1] * singles, strict=True):
        for _ in range(count):
            prov = owner.province if rng.random() < 0.85 else rng.choice(PROVINCES)
            farms.append(
                make_farm(rng, owner, random_pid_form(rng), prov, utf8=rng.random() < 0.2,
                          issued=random_issue())
            )
    # A few more legacy quirks on random farms.
    rest = farms[14:]
    with_cert = [f for f in rest if f.gap_cert_no is not None]
    feb29, *no_expiry = rng.sample(with_cert, 3)
    feb29.gap_expire = "2567-02-29"  # the certificate ended on 29 Feb 2024
    for f in no_expiry:
        f.gap_expire = None  # certificate number but no expiry keyed
    for f in rng.sample(rest, 3):
        f.species_code = f.species_code.lstrip("0")  # leading zero lost in a spreadsheet
    rng.choice(rest).area_rai = ""
    return farms


# --------------------------------------------------------------------------- SQL


HEADER = """\
-- fisheries.sql: the demo "legacy fisheries database" of lc2-gateway.
--
-- GENERATED by config/demo/make_fisheries_sql.py (random seed 2567): do not edit by
-- hand. Change the script and run it again; `make_fisheries_sql.py --check` fails
-- when this file is stale. The gateway's SQLite adapter runs this file with
-- sqlite3 executescript() when the demo database does not exist yet.
--
-- All people are invented; citizen IDs are random numbers with a valid checksum.
--
-- Legacy quirks held here on purpose:
--   * PID / OWNER_PID (CHAR(17)) in four forms: plain 3100501234567, dashed
--     3-1005-01234-56-7, space-padded to 17 characters, grouped with spaces
--     3 1005 01234 56 7. The same person often has different forms in the two
--     tables. First digits: mostly 1 and 3, a few 5, 8 and 0.
--   * Thai text as TIS-620 (cp874) bytes in TEXT columns: CAST(X'..' AS TEXT)
--     stores bytes that are NOT valid UTF-8 (an old import never converted them).
--     About 20% of the rows were re-keyed by a newer system and hold UTF-8 text;
--     only those carry zero-width spaces (U+200B) and decomposed sara am
--     (U+0E4D U+0E32). TIS-620 rows have double and trailing spaces. Each row's
--     comment shows its FULLNAME or FARM_NAME decoded.
--   * FULLNAME: title glued to the first name (นายสมชาย, น.ส., ranks such as
--     จ.ส.อ.), a few with a space after the title. SEX '1' male, '2' female.
--   * BIRTH_DATE CHAR(8) BE YYYYMMDD: YYYYMM00, YYYY0000, 00000000 and '' for
--     unknown parts, and 29 February of BE years whose CE year is leap (25270229).
--   * REG_DATE DD/MM/YYYY BE, some DD/MM/YY; one 29/02/2563.
--   * Second registrations: an old cancelled (STATUS 'C') row next to the active one.
--   * HOUSE_NO like 99/1 (two in Thai digits); MOO '0'..'12' or ''; SOI/ROAD '' or '-'.
--   * AQUA_FARM: AREA_RAI as text ('12.5', ' 3', '3.00', ''); GAP_EXPIRE YYYY-MM-DD
--     with a BE year (as a DATE column dumped to text), incl. 2571-02-29, or NULL;
--     three SPECIES_CODE values lost their leading zero ('1' for '01').
--     One owner has exactly 10 farms; many have 2-4.
"""

SCHEMA = """\
-- Lookup tables
CREATE TABLE CODE_PROVINCE (
    PROV_CODE     CHAR(2)      NOT NULL PRIMARY KEY,
    PROV_NAME     VARCHAR(50)
);

CREATE TABLE CODE_FISHER_TYPE (
    FISHER_TYPE   CHAR(1)      NOT NULL PRIMARY KEY,
    TYPE_NAME     VARCHAR(50)
);

CREATE TABLE CODE_SPECIES (
    SPECIES_CODE  CHAR(2)      NOT NULL PRIMARY KEY,
    SPECIES_NAME  VARCHAR(50)
);

-- ทะเบียนชาวประมง (fisher registration)
CREATE TABLE FISHER_REG (
    REG_NO        VARCHAR(20)  NOT NULL PRIMARY KEY,
    PID           CHAR(17),
    FULLNAME      VARCHAR(100),
    SEX           CHAR(1),
    BIRTH_DATE    CHAR(8),
    REG_DATE      VARCHAR(10),
    FISHER_TYPE   CHAR(1),
    HOUSE_NO      VARCHAR(20),
    MOO           VARCHAR(2),
    SOI           VARCHAR(50),
    ROAD          VARCHAR(50),
    TAMBON_CODE   CHAR(6),
    AMPHUR_CODE   CHAR(4),
    PROV_CODE     CHAR(2),
    TAMBON_NAME   VARCHAR(50),
    AMPHUR_NAME   VARCHAR(50),
    STATUS        CHAR(1)
);

-- ทะเบียนฟาร์มเพาะเลี้ยงสัตว์น้ำ (aquaculture farm registration)
CREATE TABLE AQUA_FARM (
    FARM_ID       VARCHAR(20)  NOT NULL PRIMARY KEY,
    OWNER_PID     CHAR(17),
    FARM_NAME     VARCHAR(100),
    SPECIES_CODE  CHAR(2),
    AREA_RAI      VARCHAR(10),
    GAP_CERT_NO   VARCHAR(20),
    GAP_EXPIRE    VARCHAR(10),
    PROV_CODE     CHAR(2)
);

CREATE INDEX IX_FISHER_REG_PID ON FISHER_REG (PID);
CREATE INDEX IX_AQUA_FARM_OWNER_PID ON AQUA_FARM (OWNER_PID);
CREATE INDEX IX_AQUA_FARM_PROV_CODE ON AQUA_FARM (PROV_CODE);
"""


def _row_comment(text: str, *, utf8: bool, notes: list[str]) -> str:
    parts = [("utf-8 " if utf8 else "tis620 ") + shown(text), *notes]
    return "  -- " + ", ".join(parts)


def render(rng: random.Random) -> str:
    people = generate_people(rng)
    regs = demo_registrations() + generate_registrations(rng, people)
    farms = generate_farms(rng, people)

    # REG_NO: PR-<BE year of registration>-<running number>, rows in REG_NO order.
    regs.sort(key=lambda r: (r.reg_date, r.person.pid))
    per_year: dict[int, int] = {}
    for r in regs:
        year = r.reg_date.year + BE_OFFSET
        per_year[year] = per_year.get(year, rng.randint(1, 400)) + rng.randint(1, 7)
        r.reg_no = f"PR-{year}-{per_year[year]:06d}"

    # FARM_ID: FM-<province>-<running number> in registration order; GAP numbers likewise.
    farms.sort(key=lambda f: (f.registered, f.owner.pid, f.pid_form))
    per_prov: dict[str, int] = {}
    gap_seq = 0
    for f in farms:
        per_prov[f.province.code] = per_prov.get(f.province.code, 0) + 1
        f.farm_id = f"FM-{f.province.code}-{per_prov[f.province.code]:05d}"
        if f.gap_cert_no is not None:
            gap_seq += rng.randint(1, 9)
            f.gap_cert_no = f"GAP-{f.province.code}-{f.registered.year + BE_OFFSET}-{gap_seq:05d}"
    farms.sort(key=lambda f: f.farm_id)

    out: list[str] = [HEADER, "BEGIN TRANSACTION;", "", SCHEMA]

    out.append("-- CODE_PROVINCE (PROV_CODE, PROV_NAME)")
    for prov in PROVINCES:
        out.append(f"INSERT INTO CODE_PROVINCE VALUES ('{prov.code}', "
                   f"{sql_text(prov.name, tis620=True)});  -- {prov.name}")
    out.append("")
    out.append("-- CODE_FISHER_TYPE (FISHER_TYPE, TYPE_NAME)")
    for code, name in FISHER_TYPES:
        out.append(f"INSERT INTO CODE_FISHER_TYPE VALUES ('{code}', "
                   f"{sql_text(name, tis620=True)});  -- {name}")
    out.append("")
    out.append("-- CODE_SPECIES (SPECIES_CODE, SPECIES_NAME)")
    for code, name in SPECIES:
        out.append(f"INSERT INTO CODE_SPECIES VALUES ('{code}', "
                   f"{sql_text(name, tis620=True)});  -- {name}")
    out.append("")

    out.append("-- FISHER_REG (REG_NO, PID, FULLNAME, SEX, BIRTH_DATE, REG_DATE, FISHER_TYPE,")
    out.append("--   HOUSE_NO, MOO, SOI, ROAD, TAMBON_CODE, AMPHUR_CODE, PROV_CODE, TAMBON_NAME,")
    out.append("--   AMPHUR_NAME, STATUS)")
    for r in regs:
        p = r.person
        tis = not r.utf8
        name = p.fullname(utf8=r.utf8)
        values = [
            sql_text(r.reg_no),
            sql_text(pid_form(p.pid, r.pid_form)),
            sql_text(name, tis620=tis),
            sql_text(p.sex),
            sql_text(p.birth),
            sql_text(be_slashed(r.reg_date, two_digit_year=r.two_digit_year)),
            sql_text(p.fisher_type),
            sql_text(p.house_no, tis620=tis),
            sql_text(p.moo),
            sql_text(p.soi, tis620=tis),
            sql_text(p.road, tis620=tis),
            sql_text(p.tambon.code),
            sql_text(p.amphur.code),
            sql_text(p.province.code),
            sql_text(p.tambon.name, tis620=tis),
            sql_text(p.amphur.name, tis620=tis),
            sql_text(r.status),
        ]
        out.append(f"INSERT INTO FISHER_REG VALUES ({', '.join(values)});"
                   + _row_comment(name, utf8=r.utf8, notes=p.notes + r.notes))
    out.append("")

    out.append("-- AQUA_FARM (FARM_ID, OWNER_PID, FARM_NAME, SPECIES_CODE, AREA_RAI, GAP_CERT_NO,")
    out.append("--   GAP_EXPIRE, PROV_CODE)")
    for f in farms:
        values = [
            sql_text(f.farm_id),
            sql_text(pid_form(f.owner.pid, f.pid_form)),
            sql_text(f.name, tis620=not f.utf8),
            sql_text(f.species_code),
            sql_text(f.area_rai),
            sql_text(f.gap_cert_no),
            sql_text(f.gap_expire),
            sql_text(f.province.code),
        ]
        out.append(f"INSERT INTO AQUA_FARM VALUES ({', '.join(values)});"
                   + _row_comment(f.name, utf8=f.utf8, notes=[]))
    out.append("")
    out.append("COMMIT;")
    return "\n".join(out) + "\n"


def generate() -> str:
    return render(random.Random(SEED))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true",
                       help="exit 1 if fisheries.sql differs from what would be generated")
    group.add_argument("--pids", action="store_true",
                       help="print the demo citizen IDs and what each one shows")
    args = parser.parse_args(argv)

    if args.pids:
        for demo in DEMOS:
            print(f"{demo.pid}  {demo.shows}")
        print(f"{NO_RECORD_PID}  valid checksum, no record in any table")
        return 0

    text = generate()
    if args.check:
        try:
            current = OUTPUT.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name} to regenerate it",
                  file=sys.stderr)
            return 1
        return 0

    OUTPUT.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {OUTPUT} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
