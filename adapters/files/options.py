"""YAML options of the file backends: what every export has, then each format's own."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from gateway.adapter import OptionsModel

__all__ = [
    "CitizenIdColumn",
    "CsvOptions",
    "DbfOptions",
    "FileOptions",
    "FixedColumn",
    "FixedWidthOptions",
    "ReloadOptions",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _codec(value: str, *, allow: tuple[str, ...]) -> str:
    if value in allow:
        return value
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown codec {value!r}") from None


class ReloadOptions(OptionsModel):
    interval: float = Field(
        default=30, gt=0, le=86_400, description="seconds between checks of size and mtime"
    )
    settle: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="a file modified less than this many seconds ago is not loaded yet "
        "(its writer may not be done)",
    )
    min_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a new file with fewer rows than this fraction of the loaded one is refused",
    )
    min_rows: int = Field(default=1, ge=0, description="a file with fewer rows is refused")


class CitizenIdColumn(OptionsModel):
    """A column holding citizen IDs in any spelling, stored again as 13 digits."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    column: str = Field(min_length=1, description="column as exported (PID, ID_CARD ...)")
    as_: str = Field(alias="as", description="name of the indexed 13-digit column queries use")

    @field_validator("as_")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a plain identifier (letters, digits, _)")
        return value


class FileOptions(OptionsModel):
    path: Path = Field(description="the export file")
    table: str = Field(default="export", description="table name queries use")
    index: list[str] = Field(
        default_factory=list, description="columns to index (what queries filter on)"
    )
    citizen_ids: list[CitizenIdColumn] = Field(
        default_factory=list,
        description="citizen-ID columns normalised to 13 digits into indexed columns",
    )
    reload: ReloadOptions = ReloadOptions()
    store_dir: Path | None = Field(
        default=None,
        description="build the store as a file here instead of in memory (exports over 1 GB)",
    )
    max_age: float | None = Field(
        default=None, gt=0, description="health is down when the loaded file is older (seconds)"
    )
    allow_scan: bool = Field(
        default=False,
        description="let a query read every row (small code tables); otherwise it must "
        "use an index",
    )

    @field_validator("table")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value) or value.lower().startswith("sqlite_"):
            raise ValueError("must be a plain identifier (letters, digits, _), not sqlite_*")
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> FileOptions:
        derived = [c.as_ for c in self.citizen_ids]
        if len({d.lower() for d in derived}) != len(derived):
            raise ValueError("two citizen_ids entries use the same `as` name")
        return self

    def indexed(self) -> tuple[str, ...]:
        """Every column that gets an index: declared ones and the 13-digit citizen IDs."""
        return (*self.index, *(c.as_ for c in self.citizen_ids))

    def required_columns(self) -> tuple[str, ...]:
        """Columns the file must have."""
        return (*self.index, *(c.column for c in self.citizen_ids))


class DbfOptions(FileOptions):
    encoding: str = Field(
        default="cp874",
        description="codec of C and M fields; `ldid` trusts the file's language driver byte",
    )
    ignore_missing_memo: bool = Field(
        default=False, description="load without the .dbt/.fpt file (memo fields empty)"
    )

    @field_validator("encoding")
    @classmethod
    def _known(cls, value: str) -> str:
        return _codec(value, allow=("ldid",))


class _TextOptions(FileOptions):
    encoding: str = Field(
        default="auto",
        description="auto: UTF-8 if it has a BOM or is valid UTF-8, else cp874",
    )
    skip_rows: int = Field(default=0, ge=0, description="lines before the data (titles)")
    final_newline: bool = Field(
        default=True,
        description="the last record must end with a line break (a file cut short does not)",
    )

    @field_validator("encoding")
    @classmethod
    def _known(cls, value: str) -> str:
        return _codec(value, allow=("auto",))


class CsvOptions(_TextOptions):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    header: bool = Field(default=True, description="the first line (after skip_rows) names columns")
    columns: list[str] | None = Field(
        default=None, description="column names when the file has no header line"
    )

    @model_validator(mode="after")
    def _names(self) -> CsvOptions:
        if not self.header and not self.columns:
            raise ValueError("a file without a header line needs `columns`")
        if self.header and self.columns:
            raise ValueError("give `columns` only with header: false")
        return self


class FixedColumn(OptionsModel):
    name: str = Field(min_length=1)
    start: int = Field(ge=1, description="first position, counting from 1 as record layouts do")
    width: int = Field(ge=1)
    strip: bool = Field(default=True, description="drop the padding spaces around the value")


class FixedWidthOptions(_TextOptions):
    columns: list[FixedColumn] = Field(min_length=1, description="the record layout")
    units: Literal["bytes", "chars"] = Field(
        default="bytes",
        description="what start and width count: bytes (COBOL and most exporters) or characters",
    )
    record_length: int | None = Field(
        default=None, ge=1, description="every record is exactly this long (checked)"
    )

    @model_validator(mode="after")
    def _layout(self) -> FixedWidthOptions:
        names = [c.name for c in self.columns]
        if len({n.lower() for n in names}) != len(names):
            raise ValueError("two columns have the same name")
        end = max(c.start + c.width - 1 for c in self.columns)
        if self.record_length is not None and self.record_length < end:
            raise ValueError(
                f"record_length {self.record_length} is shorter than the layout ({end})"
            )
        return self
