"""What a sandbox row is about: an invented person, a real place, dates that fit together.

The places are real DOPA administrative units (province 2 digits, district 4,
subdistrict 6, each code the prefix of the next), so a reviewer who knows them
finds nothing odd; the people are invented, with citizen IDs whose check digit
is valid.  Everything is drawn from one seeded random generator.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Final

from gateway.transforms import check_digit

__all__ = ["PLACES", "Person", "Place", "RowFacts", "person", "row_facts"]

MALE_FIRST: Final = ("สมชาย", "สมศักดิ์", "ประเสริฐ", "สุชาติ", "วิชัย", "บุญมี", "สมพงษ์", "มานพ")
FEMALE_FIRST: Final = ("มาลี", "สมศรี", "บุญเรือน", "สุนีย์", "วันเพ็ญ", "กาญจนา", "สุดารัตน์", "ยุพิน")
LAST_NAMES: Final = (
    "ใจดี", "ศรีสุข", "ทองคำ", "แก้วมณี", "บุญมา", "สุขสวัสดิ์", "ศรีสมุทร", "ทะเลทอง",
    "แหลมทอง", "จันทร์หอม", "พรหมแก้ว", "นาคสวัสดิ์",
)  # fmt: skip
SOI_NAMES: Final = ("ร่วมใจ", "เทศบาล 5", "ประมงสามัคคี", "ท่าเรือ", "วัดกลาง", "มิตรภาพ")
VESSEL_NAMES: Final = ("โชคอำนวย", "ทรัพย์ทวี", "ศรีสมุทร", "รุ่งเรืองชัย", "นาวาทอง")


@dataclass(frozen=True, slots=True)
class Place:
    province_code: str
    province: str
    district_code: str
    district: str
    subdistrict_code: str
    subdistrict: str
    roads: tuple[str, ...]


def _places(
    province_code: str, province: str, roads: tuple[str, ...], units: tuple[str, ...]
) -> tuple[Place, ...]:
    """``units``: "DD district/SS subdistrict" with the codes' last two digits."""
    out = []
    for unit in units:
        district, subdistrict = unit.split("/")
        d_code = province_code + district[:2]
        out.append(
            Place(province_code, province, d_code, district[3:], d_code + subdistrict[:2],
                  subdistrict[3:], roads)
        )  # fmt: skip
    return tuple(out)


PLACES: Final[tuple[Place, ...]] = (
    *_places("11", "สมุทรปราการ", ("สุขุมวิท", "ปู่เจ้าสมิงพราย"),
             ("01 เมืองสมุทรปราการ/01 ปากน้ำ", "05 พระสมุทรเจดีย์/02 บ้านคลองสวน")),
    *_places("20", "ชลบุรี", ("สุขุมวิท", "เลียบชายฝั่ง"),
             ("01 เมืองชลบุรี/16 อ่างศิลา", "07 ศรีราชา/03 บางพระ", "09 สัตหีบ/05 แสมสาร")),
    *_places("21", "ระยอง", ("สุขุมวิท", "ริมทะเล"),
             ("01 เมืองระยอง/01 ท่าประดู่", "03 แกลง/06 ปากน้ำประแส")),
    *_places("74", "สมุทรสาคร", ("เพชรเกษม", "พระรามที่ 2"),
             ("01 เมืองสมุทรสาคร/02 ท่าฉลอม", "01 เมืองสมุทรสาคร/13 พันท้ายนรสิงห์")),
    *_places("76", "เพชรบุรี", ("เพชรเกษม", "บ้านแหลม-บางตะบูน"),
             ("06 บ้านแหลม/03 ปากทะเล", "06 บ้านแหลม/06 บางตะบูน", "05 ชะอำ/01 ชะอำ")),
    *_places("77", "ประจวบคีรีขันธ์", ("เพชรเกษม",),
             ("07 หัวหิน/01 หัวหิน", "04 บางสะพาน/05 แม่รำพึง")),
    *_places("84", "สุราษฎร์ธานี", ("ตลาดใหม่", "ชนเกษม"),
             ("01 เมืองสุราษฎร์ธานี/04 บางกุ้ง", "06 ไชยา/07 พุมเรียง")),
    *_places("90", "สงขลา", ("ราษฎร์อุทิศ", "สงขลา-ระโนด"),
             ("01 เมืองสงขลา/06 เกาะยอ", "03 จะนะ/06 นาทับ")),
)  # fmt: skip

# Sandbox dates never depend on the day they are generated: the same config, the same rows.
_LATEST: Final = dt.date(2025, 6, 30)


@dataclass(frozen=True, slots=True)
class Person:
    pid: str  # 13 digits, valid check digit
    male: bool
    title: str
    first: str
    last: str
    born: dt.date

    @property
    def full_name(self) -> str:
        # as legacy registers keep it: the title glued to the first name, two spaces before
        # the last name
        return f"{self.title}{self.first}  {self.last}"


@dataclass(frozen=True, slots=True)
class RowFacts:
    """One registration of ``person``: when, where, and its running number."""

    index: int
    person: Person
    place: Place
    registered: dt.date  # an adult by then
    expires: dt.date  # after registered
    happened: dt.date  # some later event (a movement, a payment), after registered
    number: int  # running number of the registration
    house_no: str
    village_no: int
    soi: str


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


def _years_later(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year + years, day=min(day.day, 28))  # 29 Feb has no twin


def person(rng: random.Random) -> Person:
    first12 = str(rng.choice((1, 3))) + "".join(str(rng.randrange(10)) for _ in range(11))
    male = rng.random() < 0.6
    title = "นาย" if male else rng.choice(("นาง", "นางสาว"))
    return Person(
        pid=first12 + str(check_digit(first12)),
        male=male,
        title=title,
        first=rng.choice(MALE_FIRST if male else FEMALE_FIRST),
        last=rng.choice(LAST_NAMES),
        born=_day(rng, dt.date(1955, 1, 1), dt.date(1990, 12, 31)),
    )


def row_facts(rng: random.Random, index: int, who: Person, home: Place, number: int) -> RowFacts:
    adult = _years_later(who.born, 20)
    registered = _day(rng, adult, _LATEST - dt.timedelta(days=400))
    house = str(rng.randrange(1, 300))
    if rng.random() < 0.4:
        house += f"/{rng.randrange(1, 20)}"
    return RowFacts(
        index=index,
        person=who,
        place=home,
        registered=registered,
        expires=_years_later(registered, rng.choice((2, 3, 5))),
        happened=_day(rng, registered + dt.timedelta(days=1), _LATEST),
        number=number,
        house_no=house,
        village_no=rng.randrange(1, 13),
        soi=rng.choice(SOI_NAMES),
    )
