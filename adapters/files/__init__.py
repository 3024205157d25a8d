"""File backends: nightly exports of older systems, served from an indexed store.

Three types share one adapter and differ only in how the file is read:

* ``dbf`` - dBase III/IV and FoxPro tables (``.dbf`` with ``.dbt``/``.fpt``
  memo files) through dbfread; text in cp874 unless configured otherwise;
* ``csv`` - delimited text (stdlib ``csv``), cp874 or UTF-8 with or without BOM;
* ``fixedwidth`` - records laid out by position, ``start``/``width`` per column.

The file is never read to answer a call: each version is loaded once into an
SQLite store (in memory, or under ``store_dir``) with the declared indexes,
and services query that store with SQL (``operation: {query: ...}``, SQLite
dialect, ``:name`` placeholders).  A query that would read every row instead
of using an index is refused.  Citizen-ID columns listed in ``citizen_ids``
are stored again as 13 digits in an indexed column, so a plain PID finds a
record whatever spelling (dashes, spaces, padding, Thai digits) the export
holds.  See :mod:`adapters.files.adapter` for how a new version replaces the
old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from adapters._sql import CompiledQuery, SqlOperation, compile_named
from adapters.files.adapter import FileAdapter
from adapters.files.options import (
    CitizenIdColumn,
    CsvOptions,
    DbfOptions,
    FileOptions,
    FixedColumn,
    FixedWidthOptions,
    ReloadOptions,
)
from gateway.adapter import BackendLimits, OptionsModel

__all__ = [
    "CSV",
    "DBF",
    "FIXED_WIDTH",
    "CitizenIdColumn",
    "CsvOptions",
    "DbfOptions",
    "FileAdapter",
    "FileFactory",
    "FileOptions",
    "FixedColumn",
    "FixedWidthOptions",
    "ReloadOptions",
]


class FileFactory:
    """One factory per file format; ``type_name`` and ``options_model`` differ."""

    type_name: ClassVar[str]
    options_model: ClassVar[type[OptionsModel]]
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> CompiledQuery:
        op: SqlOperation = operation
        return compile_named(op.query, "qmark", param_names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> FileAdapter:
        opts: FileOptions = options
        return FileAdapter(name, opts, limits)


class DbfFactory(FileFactory):
    type_name: ClassVar[str] = "dbf"
    options_model: ClassVar[type[OptionsModel]] = DbfOptions


class CsvFactory(FileFactory):
    type_name: ClassVar[str] = "csv"
    options_model: ClassVar[type[OptionsModel]] = CsvOptions


class FixedWidthFactory(FileFactory):
    type_name: ClassVar[str] = "fixedwidth"
    options_model: ClassVar[type[OptionsModel]] = FixedWidthOptions


DBF = DbfFactory()
CSV = CsvFactory()
FIXED_WIDTH = FixedWidthFactory()
