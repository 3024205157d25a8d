"""ODBC connection settings: the YAML options, text codecs and the connection string."""

from __future__ import annotations

import codecs
from typing import Any, Literal

import pyodbc  # type: ignore[import-not-found, unused-ignore]
from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.adapter import OptionsModel

__all__ = [
    "LENIENT_PREFIX",
    "OdbcDecoding",
    "OdbcOptions",
    "build_connection_string",
    "ctype",
]

# --- text codecs --------------------------------------------------------------------

LENIENT_PREFIX = "lc2_replace_"


def _lenient_search(name: str) -> codecs.CodecInfo | None:
    """``lc2_replace_<codec>``: <codec> with undecodable bytes as U+FFFD.

    pyodbc decodes with errors="strict" and has no setting for it; a codec
    that ignores the requested error mode is the only way to keep one bad byte
    in a twenty-year-old row from failing the whole call.
    """
    if not name.startswith(LENIENT_PREFIX):
        return None
    base = codecs.lookup(name[len(LENIENT_PREFIX) :])

    def decode(data: Any, errors: str = "strict") -> tuple[str, int]:
        return base.decode(data, "replace")

    return codecs.CodecInfo(base.encode, decode, name=name)


codecs.register(_lenient_search)


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown codec {name!r}") from None


def ctype(codec: str) -> int:
    """The C type pyodbc asks the driver for: wide for UTF-16/32, narrow otherwise."""
    wide = codec.replace("-", "").replace("_", "").startswith(("utf16", "utf32"))
    return int(pyodbc.SQL_WCHAR if wide else pyodbc.SQL_CHAR)


# --- options --------------------------------------------------------------------------


class OdbcDecoding(OptionsModel):
    char: str = Field(
        default="utf-8",
        description="codec of SQL_CHAR columns (CHAR, VARCHAR, TEXT); cp874 for TIS-620 bytes",
    )
    wchar: str | None = Field(
        default=None,
        description="codec of SQL_WCHAR columns (NCHAR, NVARCHAR, NTEXT, and every text "
        "column of a Unicode driver): utf-16le, except utf-8 fetched narrow for MariaDB/MySQL",
    )

    @field_validator("char", "wchar")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return None if value is None else _codec(value)


_PASSWORD_KEYS = frozenset({"pwd", "password"})


def _connection_keys(text: str) -> list[str]:
    """Attribute names of an ODBC connection string (``{...}`` values may hold ``;``)."""
    keys: list[str] = []
    i, n = 0, len(text)
    while i < n:
        eq = text.find("=", i)
        if eq < 0:
            break
        keys.append(text[i:eq].strip().lower())
        j = eq + 1
        while j < n and text[j] == " ":
            j += 1
        if j < n and text[j] == "{":
            j += 1
            while j < n:
                if text[j] == "}":
                    if j + 1 < n and text[j + 1] == "}":
                        j += 2
                        continue
                    break
                j += 1
        end = text.find(";", j)
        i = n if end < 0 else end + 1
    return keys


def _braced(value: str) -> str:
    return "{" + value.replace("}", "}}") + "}"


def _attribute(value: str) -> str:
    """An ODBC attribute value, braced only when it must be: psqlodbc keeps the
    braces of a braced UID as part of the name (it only unbraces PWD)."""
    needs = any(c in value for c in ";{}=") or value != value.strip()
    return _braced(value) if needs else value


class OdbcOptions(OptionsModel):
    connection_string: str | None = Field(
        default=None,
        description="Driver={FreeTDS};Server=...;Database=...; no UID/PWD in it",
    )
    dsn: str | None = Field(default=None, description="data source name from odbc.ini")
    user: str | None = Field(default=None, description="login (UID)")
    password: SecretStr | None = Field(default=None, description="password (PWD), from ${ENV}")
    login_timeout: float = Field(default=5, gt=0, le=300, description="seconds per connect")
    decoding: OdbcDecoding = OdbcDecoding()
    decoding_errors: Literal["replace", "strict"] = Field(
        default="replace", description="replace: an undecodable byte becomes U+FFFD"
    )
    encoding: str = Field(
        default="utf-16le",
        description="codec for str parameters: utf-16le binds NVARCHAR, a single-byte codec "
        "(cp874, latin-1) binds VARCHAR so a SQL Server VARCHAR index is used",
    )
    read_only: bool = Field(
        default=True, description="make sessions read-only where the DBMS can (recommended)"
    )
    init_statements: list[str] = Field(
        default_factory=list, description="statements run on each new connection"
    )
    max_idle_time: float = Field(
        default=300, gt=0, description="seconds an idle connection is kept (firewalls drop them)"
    )
    probe_query: str = Field(default="SELECT 1", min_length=1, description="health probe")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return _codec(value)

    @model_validator(mode="after")
    def _one_source_no_secret(self) -> OdbcOptions:
        if (self.connection_string is None) == (self.dsn is None):
            raise ValueError("give exactly one of connection_string and dsn")
        if self.connection_string is not None:
            keys = set(_connection_keys(self.connection_string))
            if keys & _PASSWORD_KEYS:
                raise ValueError(
                    "connection_string must not contain a password (PWD=); "
                    "put it in the separate `password` option"
                )
            if self.user is not None and "uid" in keys:
                raise ValueError("UID is both in connection_string and in `user`")
        return self


def build_connection_string(options: OdbcOptions) -> str:
    head = options.connection_string or f"DSN={_attribute(options.dsn or '')}"
    parts = [head.strip().rstrip(";")]
    if options.user is not None:
        parts.append(f"UID={_attribute(options.user)}")
    if options.password is not None:
        # always braced: a password may hold ; or } and every driver tried unbraces PWD
        parts.append(f"PWD={_braced(options.password.get_secret_value())}")
    return ";".join(parts)
