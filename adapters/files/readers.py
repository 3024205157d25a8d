"""Reading exports: dBase/FoxPro ``.dbf`` (through dbfread), CSV and fixed-width text.

Each reader yields rows of plain values and refuses a file that is not
whole: a ``.dbf`` shorter than its header says, a memo pointing past the end
of its memo file, a CSV or fixed-width file whose last record has no line
break, an unterminated quote, a row with the wrong number of fields.  A
refused file raises :class:`ExportError` with a reason an operator can act on.

Thai text: dBase C and M fields are decoded from cp874 (or what the file's
language driver byte says, with ``encoding: ldid``); CSV and fixed-width
files are UTF-8 when they carry a BOM or decode as UTF-8, else cp874.  A byte
the codec cannot map becomes U+FFFD and is counted, instead of refusing a
twenty-year-old export for one bad byte.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from dbfread import DBF, FieldParser  # type: ignore[import-untyped, unused-ignore]
from dbfread.codepages import guess_encoding  # type: ignore[import-untyped, unused-ignore]
from dbfread.memo import (  # type: ignore[import-untyped, unused-ignore]
    BinaryMemo,
    DB3MemoFile,
    FakeMemoFile,
    VFPMemoFile,
    open_memofile,
)

from adapters.files.options import CsvOptions, DbfOptions, FileOptions, FixedWidthOptions

__all__ = [
    "ExportError",
    "Report",
    "Stopped",
    "Table",
    "dbf_files",
    "detect_encoding",
    "read_export",
]

Value = str | int | float | bytes | None


class ExportError(Exception):
    """The file can not be loaded as it is (incomplete, corrupt, unexpected shape)."""


class Stopped(Exception):
    """The adapter is closing; the load was abandoned."""


@dataclass(slots=True)
class Report:
    encoding: str = ""
    declared_encoding: str | None = None  # what a .dbf's language driver byte says
    deleted: int = 0  # dBase records marked deleted, skipped
    replaced: int = 0  # bytes the codec could not map (now U+FFFD)
    invalid: int = 0  # numbers, dates or logicals that were not (stored as NULL)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Table:
    columns: list[str]
    rows: Iterator[Sequence[Value]]
    report: Report
    closer: Callable[[], None] | None = None  # a file opened to read the header

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        if self.closer is not None:
            self.closer()


def _storable(value: Any) -> Value:
    """A value SQLite keeps as is (no adapters: Python 3.12 deprecates the date ones)."""
    if value is None or isinstance(value, str | int | float | bytes):
        return value  # bool is an int
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value)


def _check_names(names: Sequence[str], where: str) -> list[str]:
    out = [n.strip() for n in names]
    if any(not n for n in out):
        raise ExportError(f"{where}: a column has no name")
    lowered = [n.lower() for n in out]
    if len(set(lowered)) != len(lowered):
        dup = sorted({n for n in lowered if lowered.count(n) > 1})
        raise ExportError(f"{where}: column names repeat ({', '.join(dup)})")
    return out


# --- dBase / FoxPro ---------------------------------------------------------------------


def dbf_files(path: Path) -> list[Path]:
    """The .dbf and its memo file, if there is one (both must be stable to load)."""
    out = [path]
    for ext in (".fpt", ".FPT", ".dbt", ".DBT"):
        memo = path.with_suffix(ext)
        if memo.exists():
            out.append(memo)
            break
    return out


class _ThaiFieldParser(FieldParser):  # type: ignore[misc]
    """dbfread's parser, made to survive legacy data instead of failing the file.

    - D fields come back as their 8 characters: a BE date (25670229) is not a
      valid CE date and must reach the ``be_date`` transform untouched;
    - N/F/L fields that hold garbage become NULL and are counted;
    - memo references past the end of the memo file refuse the file (it was
      copied half way), everything else is decoded with ``errors="replace"``.
    """

    report: Report
    memo_size: int
    memo_block: int
    memo_terminated: bool  # dBase III memos end with 0x1A, not with a length

    def decode_text(self, text: bytes) -> str:
        out: str = text.decode(self.encoding, errors="replace")
        self.report.replaced += out.count("\ufffd")
        return out

    def parseD(self, field: Any, data: bytes) -> str | None:  # dbfread's method names
        text = data.strip(b" \x00").decode("ascii", errors="replace")
        return text or None

    def _number(self, data: bytes) -> int | float | None:
        text = data.strip().strip(b"*").replace(b",", b".")
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            self.report.invalid += 1
            return None

    def parseN(self, field: Any, data: bytes) -> int | float | None:
        return self._number(data)

    def parseF(self, field: Any, data: bytes) -> int | float | None:
        return self._number(data)

    def parseL(self, field: Any, data: bytes) -> bool | None:
        if data in b"TtYy" and data:
            return True
        if data in b"FfNn" and data:
            return False
        if data not in b"? " and data.strip(b"\x00"):
            self.report.invalid += 1
        return None

    def parseM(self, field: Any, data: bytes) -> str | bytes | None:
        index = self._parse_memo_index(data)
        if index <= 0:
            return None
        if index * self.memo_block >= self.memo_size:
            raise ExportError(
                f"field {field.name} points past the end of the memo file: it is incomplete"
            )
        try:
            memo = self.get_memo(index)
        except (OSError, ValueError) as exc:  # dbfread: "EOF reached while reading memo"
            raise ExportError(f"memo file is incomplete or corrupt ({exc})") from None
        if memo is None:
            return None
        if isinstance(memo, BinaryMemo):
            return bytes(memo)
        if self.memo_terminated and index * self.memo_block + len(memo) >= self.memo_size:
            raise ExportError("a dBase III memo runs to the end of the memo file: incomplete")
        return self.decode_text(bytes(memo))

    parseG = parseP = parseM  # OLE objects and pictures: binary memos

    def parseB(self, field: Any, data: bytes) -> str | bytes | float | None:
        if self.dbversion in (0x30, 0x31, 0x32):  # Visual FoxPro: a double, not a memo
            return float(struct.unpack("<d", data)[0])
        return self.parseM(field, data)


def _dbf_table(path: Path, opts: DbfOptions, stop: threading.Event) -> Table:
    report = Report()
    try:
        head = DBF(str(path), encoding="ascii", ignorecase=False, load=False)
    except Exception as exc:  # dbfread raises bare ValueError/struct.error on garbage
        raise ExportError(f"not a readable .dbf header ({exc})") from None
    ldid = head.header.language_driver
    try:
        declared: str | None = guess_encoding(ldid) if ldid else None
    except LookupError:
        declared = None
    report.declared_encoding = declared
    encoding = (declared or "cp874") if opts.encoding == "ldid" else opts.encoding
    report.encoding = encoding
    if declared and codecs.lookup(declared).name != codecs.lookup(encoding).name:
        report.notes.append(
            f"language driver byte 0x{ldid:02x} says {declared}; decoded as {encoding}"
        )
    table = DBF(
        str(path),
        encoding=encoding,
        char_decode_errors="replace",
        parserclass=_ThaiFieldParser,
        ignore_missing_memofile=opts.ignore_missing_memo,
        ignorecase=False,
        load=False,
    )
    hdr = table.header
    size = path.stat().st_size
    expected = hdr.headerlen + hdr.numrecords * hdr.recordlen
    if size < expected:
        raise ExportError(
            f"the header declares {hdr.numrecords} records ({expected} bytes) but the file "
            f"has {size} bytes: it is incomplete"
        )
    columns = _check_names(table.field_names, path.name)
    return Table(columns, _dbf_rows(table, path, report, stop), report)


def _dbf_rows(
    table: Any, path: Path, report: Report, stop: threading.Event
) -> Iterator[Sequence[Value]]:
    hdr = table.header
    memo_name = table.memofilename
    memofile = open_memofile(memo_name, hdr.dbversion) if memo_name else FakeMemoFile(None)
    with memofile, path.open("rb") as f:
        parser = _ThaiFieldParser(table, memofile)
        parser.report = report
        parser.memo_size = Path(memo_name).stat().st_size if memo_name else 0
        # dbfread reads dBase III/IV memos in 512-byte blocks; FoxPro says in its header.
        vfp = isinstance(memofile, VFPMemoFile)
        parser.memo_block = max(1, memofile.header.blocksize) if vfp else 512
        parser.memo_terminated = isinstance(memofile, DB3MemoFile)
        parse = parser.parse
        fields = table.fields
        f.seek(hdr.headerlen)
        # Exactly as many records as the header declares: a writer appends the
        # records first and updates the count last.
        for n in range(hdr.numrecords):
            if n % 1000 == 0 and stop.is_set():
                raise Stopped
            record = f.read(hdr.recordlen)
            if len(record) < hdr.recordlen:
                raise ExportError(f"record {n + 1} is cut short: the file is incomplete")
            flag = record[:1]
            if flag == b"*":
                report.deleted += 1
                continue
            if flag != b" ":
                raise ExportError(f"record {n + 1} has no valid deletion flag: corrupt file")
            values: list[Value] = []
            pos = 1
            for fld in fields:
                values.append(_storable(parse(fld, record[pos : pos + fld.length])))
                pos += fld.length
            yield values


# --- text: encodings --------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """utf-8-sig with a BOM, utf-8 if the whole file decodes as UTF-8, else cp874.

    TIS-620 text fails UTF-8 within its first few Thai bytes, so a cp874 file
    is rarely read far; a UTF-8 one is read once more than strictly needed.
    """
    with path.open("rb") as f:
        if f.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp874"
    return "utf-8"


def _check_final_newline(path: Path) -> None:
    with path.open("rb") as f:
        f.seek(0, io.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, io.SEEK_END)
        if f.read(1) != b"\n":
            raise ExportError(
                "the last record has no line break: the file is incomplete "
                "(set final_newline: false if this exporter never writes one)"
            )


def _text_stream(f: IO[bytes], encoding: str, report: Report) -> Iterator[str]:
    """Decoded chunks; a byte the codec can not map becomes U+FFFD and is counted."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    final = False
    while not final:
        chunk = f.read(1 << 16)
        final = not chunk
        text: str = decoder.decode(chunk, final)
        report.replaced += text.count("\ufffd")
        yield text


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    """Decoded chunks as lines with their line break, as csv.reader wants them."""
    buf = ""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split("\n")
        for line in lines:
            yield line + "\n"
    if buf:
        yield buf


def _prepare_text(path: Path, opts: CsvOptions | FixedWidthOptions) -> tuple[str, Report]:
    if opts.final_newline:
        _check_final_newline(path)
    encoding = detect_encoding(path) if opts.encoding == "auto" else opts.encoding
    return encoding, Report(encoding=encoding)


# --- CSV ----------------------------------------------------------------------------------


def _csv_table(path: Path, opts: CsvOptions, stop: threading.Event) -> Table:
    # The file is streamed: exports of hundreds of megabytes are never held whole.
    encoding, report = _prepare_text(path, opts)
    f = path.open("rb")
    try:
        lines = _lines(_text_stream(f, encoding, report))
        for _ in range(opts.skip_rows):
            next(lines, None)
        reader = csv.reader(lines, delimiter=opts.delimiter, quotechar=opts.quotechar, strict=True)
        if opts.header:
            try:
                names = next(reader)
            except StopIteration:
                raise ExportError("the file is empty: no header line") from None
            except csv.Error as exc:
                raise ExportError(f"header line: {exc}") from None
        else:
            names = list(opts.columns or ())
        columns = _check_names(names, path.name)
    except BaseException:
        f.close()
        raise
    rows = _csv_rows(f, reader, len(columns), opts.skip_rows, stop)
    return Table(columns, rows, report, closer=f.close)


def _csv_rows(
    f: IO[bytes], reader: Any, width: int, skipped: int, stop: threading.Event
) -> Iterator[Sequence[Value]]:
    with f:
        n = 0
        try:
            for row in reader:
                n += 1
                if n % 1000 == 0 and stop.is_set():
                    raise Stopped
                if not row:
                    continue  # a blank line
                if len(row) != width:
                    raise ExportError(
                        f"line {reader.line_num + skipped}: {len(row)} fields where the header "
                        f"has {width}: the file is cut short or malformed"
                    )
                yield row
        except csv.Error as exc:
            raise ExportError(f"line {reader.line_num + skipped}: {exc}") from None


# --- fixed width ----------------------------------------------------------------------------


def _fixed_table(path: Path, opts: FixedWidthOptions, stop: threading.Event) -> Table:
    encoding, report = _prepare_text(path, opts)
    columns = _check_names([c.name for c in opts.columns], path.name)
    return Table(columns, _fixed_rows(path, opts, encoding, report, stop), report)


def _fixed_rows(
    path: Path, opts: FixedWidthOptions, encoding: str, report: Report, stop: threading.Event
) -> Iterator[Sequence[Value]]:
    spans = [(c.start - 1, c.start - 1 + c.width, c.strip) for c in opts.columns]
    # A BOM is not part of the first record's first field.
    bom = codecs.BOM_UTF8 if encoding == "utf-8-sig" else b""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding

    def decode(raw: bytes) -> str:
        text = raw.decode(codec, errors="replace")
        report.replaced += text.count("\ufffd")
        return text

    cut: Callable[[bytes], list[str]]
    if opts.units == "bytes":

        def cut(line: bytes) -> list[str]:
            return [(decode(line[a:b]).strip(" ") if s else decode(line[a:b])) for a, b, s in spans]

    else:

        def cut(line: bytes) -> list[str]:
            text = decode(line)
            return [(text[a:b].strip(" ") if s else text[a:b]) for a, b, s in spans]

    with path.open("rb") as f:
        for n, raw_line in enumerate(f, start=1):
            if n % 1000 == 0 and stop.is_set():
                raise Stopped
            line = raw_line.rstrip(b"\r\n")
            if n == 1 and bom and line.startswith(bom):
                line = line[len(bom) :]
            if n <= opts.skip_rows or not line.strip():
                continue
            if opts.record_length is not None:
                length = len(line) if opts.units == "bytes" else len(decode(line))
                if length != opts.record_length:
                    raise ExportError(
                        f"line {n} is {length} {opts.units} long, not {opts.record_length}: "
                        "the file is cut short or its layout changed"
                    )
            yield cut(line)


# --- entry point ------------------------------------------------------------------------------


def read_export(path: Path, opts: FileOptions, stop: threading.Event) -> Table:
    """Open an export for reading; rows are read as the caller iterates."""
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    if isinstance(opts, DbfOptions):
        return _dbf_table(path, opts, stop)
    if isinstance(opts, CsvOptions):
        return _csv_table(path, opts, stop)
    if isinstance(opts, FixedWidthOptions):
        return _fixed_table(path, opts, stop)
    raise TypeError(f"no reader for {type(opts).__name__}")
