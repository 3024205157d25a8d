"""Meanings of common DOPA field names, in English and Thai, for the registration pack.

DOPA's data dictionary uses camelCase names (``firstName``, ``provinceDesc``);
a service that follows it gets its field meanings here without writing them
in the YAML.  A field's own ``description`` / ``description_th`` in the YAML
always wins; a name found nowhere is reported so the operator can add one.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, NamedTuple

__all__ = ["DOPA_FIELDS", "Meaning", "meaning_of"]


class Meaning(NamedTuple):
    en: str
    th: str


DOPA_FIELDS: Final = MappingProxyType(
    {
        # person
        "personalId": Meaning("Citizen ID, 13 digits", "เลขประจำตัวประชาชน 13 หลัก"),
        "titleCode": Meaning("Title code", "รหัสคำนำหน้านาม"),
        "titleDesc": Meaning("Title (Mr, Mrs, Miss, rank)", "คำนำหน้านาม"),
        "firstName": Meaning("First name", "ชื่อ"),
        "middleName": Meaning("Middle name", "ชื่อกลาง"),
        "lastName": Meaning("Last name", "ชื่อสกุล"),
        "genderCode": Meaning("Gender code", "รหัสเพศ"),
        "genderDesc": Meaning("Gender", "เพศ"),
        "dateOfBirth": Meaning("Date of birth", "วันเดือนปีเกิด"),
        "nationalityCode": Meaning("Nationality code", "รหัสสัญชาติ"),
        "nationalityDesc": Meaning("Nationality", "สัญชาติ"),
        "statusOfPersonCode": Meaning("Status of the person (code)", "รหัสสถานภาพบุคคล"),
        "dateOfMoveIn": Meaning("Date of moving into the address", "วันที่ย้ายเข้า"),
        "fatherPersonalID": Meaning("Father's citizen ID", "เลขประจำตัวประชาชนของบิดา"),
        "motherPersonalID": Meaning("Mother's citizen ID", "เลขประจำตัวประชาชนของมารดา"),
        "englishTitleDesc": Meaning("Title in English", "คำนำหน้านามภาษาอังกฤษ"),
        "englishFirstName": Meaning("First name in English", "ชื่อภาษาอังกฤษ"),
        "englishMiddleName": Meaning("Middle name in English", "ชื่อกลางภาษาอังกฤษ"),
        "englishLastName": Meaning("Last name in English", "ชื่อสกุลภาษาอังกฤษ"),
        # address
        "address": Meaning("Address", "ที่อยู่"),
        "houseNo": Meaning("House number", "บ้านเลขที่"),
        "villageNo": Meaning("Village number (moo)", "หมู่ที่"),
        "alleyWayDesc": Meaning("Lane (trok)", "ตรอก"),
        "alleyDesc": Meaning("Alley (soi)", "ซอย"),
        "roadDesc": Meaning("Road", "ถนน"),
        "subdistrictCode": Meaning(
            "Subdistrict (tambon/khwaeng) code, 6 digits", "รหัสตำบล/แขวง (6 หลัก)"
        ),
        "subdistrictDesc": Meaning("Subdistrict (tambon/khwaeng)", "ตำบล/แขวง"),
        "districtCode": Meaning("District (amphoe/khet) code, 4 digits", "รหัสอำเภอ/เขต (4 หลัก)"),
        "districtDesc": Meaning("District (amphoe/khet)", "อำเภอ/เขต"),
        "provinceCode": Meaning("Province code, 2 digits", "รหัสจังหวัด (2 หลัก)"),
        "provinceDesc": Meaning("Province", "จังหวัด"),
        "postalCode": Meaning("Postal code", "รหัสไปรษณีย์"),
        # registrations in general
        "registrationNo": Meaning("Registration number", "เลขทะเบียน"),
        "registrationDate": Meaning("Registration date", "วันที่จดทะเบียน"),
        "statusCode": Meaning("Status code", "รหัสสถานะ"),
        "statusDesc": Meaning("Status", "สถานะ"),
        "issueDate": Meaning("Date of issue", "วันที่ออก"),
        "expiryDate": Meaning("Expiry date", "วันหมดอายุ"),
    }
)


def meaning_of(name: str) -> Meaning | None:
    """The built-in meaning of a field or parameter name, if it is a known DOPA name."""
    return DOPA_FIELDS.get(name)
