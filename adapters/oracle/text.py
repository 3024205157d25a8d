"""Thai text an Oracle database holds in a character set that does not describe it.

Thin mode always asks the server for UTF-8 and decodes CHAR/VARCHAR2 with
``bytes.decode("utf-8")``.  Given the real encoding of the stored bytes
(``text_encoding``) and the database's ``NLS_CHARACTERSET``, the adapter
fetches those columns undecoded and recovers the text here.
"""

from __future__ import annotations

import re
from typing import Any

import oracledb

from gateway.adapter import BackendError

__all__ = ["DB_CHARSETS", "output_type_handler", "recover_text", "text_error"]

# NLS_CHARACTERSET -> what the server does to stored bytes on the way to a
# UTF-8 client.  None: passed through unconverted (a subset of UTF-8, or UTF-8
# itself); a codec: each stored byte converted as a character of that codec.
DB_CHARSETS: dict[str, str | None] = {
    "US7ASCII": None,
    "AL32UTF8": None,
    "UTF8": None,
    "WE8ISO8859P1": "latin-1",
    "WE8ISO8859P15": "iso8859-15",
    "WE8MSWIN1252": "cp1252",
    "WE8PC850": "cp850",
    "US8PC437": "cp437",
    "TH8TISASCII": "tis-620",
}

_THAI = re.compile("[\u0e00-\u0e7f]")
_TEXT_TYPES = (oracledb.DB_TYPE_VARCHAR, oracledb.DB_TYPE_CHAR, oracledb.DB_TYPE_LONG)


def recover_text(raw: bytes, database_charset: str, text_encoding: str) -> str:
    """The text a CHAR/VARCHAR2 value really holds, from the bytes the server sent.

    ``raw`` is what a UTF-8 client receives (python-oracledb with
    ``bypass_decode``).  US7ASCII passes the stored bytes through: they are
    decoded as ``text_encoding``.  An AL32UTF8 database filled through a
    mis-set client may hold both: bytes that are valid UTF-8 with Thai in them
    were stored by a Unicode client and are kept.  A single-byte character set
    converted each stored byte as one of its characters: that is undone first.
    """
    codec = DB_CHARSETS.get(database_charset)
    if codec is None:
        if database_charset == "US7ASCII":
            return raw.decode(text_encoding, "replace")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode(text_encoding, "replace")
        return (
            text if text.isascii() or _THAI.search(text) else raw.decode(text_encoding, "replace")
        )
    text = raw.decode("utf-8", "replace")
    try:
        stored = text.encode(codec)
    except UnicodeEncodeError:
        return text  # not a byte of that character set: real Unicode, keep it
    return stored.decode(text_encoding, "replace")


def text_error(exc: UnicodeDecodeError) -> BackendError:
    """What the driver's UTF-8 decode failing on a column means, said to an operator."""
    return BackendError(
        f"oracle: column text is not valid {exc.encoding} ({exc.reason}): the database "
        "character set does not describe the stored bytes; set text_encoding (cp874)"
    )


def output_type_handler(bypass_text: bool) -> Any:
    """How columns are fetched: LOBs as plain values, and, with a text encoding,
    CHAR/VARCHAR2/CLOB undecoded so the adapter can decode them itself."""

    def handler(cursor: Any, metadata: Any) -> Any:
        t = metadata.type_code
        if t is oracledb.DB_TYPE_CLOB:
            return cursor.var(
                oracledb.DB_TYPE_LONG, arraysize=cursor.arraysize, bypass_decode=bypass_text
            )
        if t is oracledb.DB_TYPE_NCLOB:
            return cursor.var(oracledb.DB_TYPE_LONG_NVARCHAR, arraysize=cursor.arraysize)
        if t is oracledb.DB_TYPE_BLOB:
            return cursor.var(oracledb.DB_TYPE_LONG_RAW, arraysize=cursor.arraysize)
        if bypass_text and t in _TEXT_TYPES:
            return cursor.var(t, arraysize=cursor.arraysize, bypass_decode=True)
        return None

    return handler
