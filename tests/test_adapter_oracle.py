"""Oracle adapter (python-oracledb thin mode) tested as far as it honestly goes without an
Oracle server, which can not run on these machines.

What is real here: python-oracledb itself - its connect-string parser and tnsnames.ora
reader, its exception classes built the way its thin implementation builds them
(``errors._Error(message, code=..., offset=...)`` then ``error.exc_type(error)`` for a
server error, ``errors._create_exception(...)`` for a driver error), a real connect
attempt to a closed port, and the one line with which thin mode turns column bytes into
``str`` (``bytes.decode("utf-8", encoding_errors)``).  What is not: no statement runs on
a server, so fetching, call_timeout expiry, pool exhaustion and sessions being killed
are not exercised here (docs/adapters-odbc-oracle-files.md says so too).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import oracledb
import pytest
from oracledb import errors as oracle_errors
from pydantic import ValidationError

from adapters._sql import SqlOperation
from adapters.oracle import (
    FACTORY,
    OracleAdapter,
    OracleOptions,
    describe_error,
    map_error,
    output_type_handler,
    pool_params,
    recover_text,
    text_error,
)
from gateway.adapter import (
    Adapter,
    BackendError,
    BackendLimits,
    BackendTimeout,
    BackendUnavailable,
    PoolStats,
    PrepareError,
)
from gateway.transforms import compile_chain

LIMITS = BackendLimits(pool_size=3, acquire_timeout=1.5, query_timeout=4.0)
THAI = "นายสมชาย “ใจดี” …"  # cp874 punctuation (0x93, 0x94, 0x85) as well as Thai
STORED = THAI.encode("cp874")  # the bytes an old client wrote, whatever the column says


def _options(**extra: Any) -> OracleOptions:
    return OracleOptions.model_validate({"dsn": "db.dof.local:1521/FISHER", "user": "gw", **extra})


# --- options and connect strings -------------------------------------------------------


def test_options_refuse_credentials_in_the_dsn() -> None:
    with pytest.raises(ValidationError, match="user/password@"):
        _options(dsn="gw/secret@db:1521/FISHER")
    with pytest.raises(ValidationError, match="must not contain a password"):
        _options(dsn="tcps://db:2484/FISHER?wallet_password=x")
    with pytest.raises(ValidationError, match="wallet_password without wallet_location"):
        _options(wallet_password="x")
    with pytest.raises(ValidationError, match="unsupported NLS_CHARACTERSET"):
        _options(database_charset="KO16KSC5601")
    with pytest.raises(ValidationError, match="unknown codec"):
        _options(text_encoding="tis-999")
    opts = _options(text_encoding="TIS-620", database_charset="us7ascii")
    assert opts.text_encoding == "tis-620" and opts.database_charset == "US7ASCII"
    # a full descriptor may contain @ inside; it is not a credential
    _options(dsn="(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=a@b)(PORT=1521)))")


def test_ezconnect_becomes_a_pool_of_lazy_sessions() -> None:
    params = pool_params(_options(password="pw-1", connect_timeout=3, expire_time=2), LIMITS)
    descriptor = params.get_connect_string()
    assert "(HOST=db.dof.local)(PORT=1521)" in descriptor
    assert "(SERVICE_NAME=FISHER)" in descriptor
    assert "(EXPIRE_TIME=2)" in descriptor and "(TRANSPORT_CONNECT_TIMEOUT=3)" in descriptor
    assert "pw-1" not in descriptor
    assert (params.min, params.max, params.increment) == (0, 3, 1)
    assert params.getmode == oracledb.POOL_GETMODE_TIMEDWAIT and params.wait_timeout == 1500
    assert params.user == "gw" and params.retry_count == 0


def test_tns_alias_is_read_from_config_dir(tmp_path: Path) -> None:
    (tmp_path / "tnsnames.ora").write_text(
        "FISHDB =\n"
        "  (DESCRIPTION =\n"
        "    (ADDRESS = (PROTOCOL = TCP)(HOST = 10.20.30.40)(PORT = 1522))\n"
        "    (CONNECT_DATA = (SERVICE_NAME = fisher.dof.go.th))\n"
        "  )\n",
        encoding="ascii",
    )
    params = pool_params(_options(dsn="FISHDB", config_dir=tmp_path), LIMITS)
    assert params.host == "10.20.30.40" and params.port == 1522
    assert params.service_name == "fisher.dof.go.th"


def test_tls_with_a_wallet(tmp_path: Path) -> None:
    opts = _options(
        dsn="tcps://db.dof.go.th:2484/FISHER",
        wallet_location=tmp_path,
        wallet_password="wallet-pw",
        ssl_server_cert_dn="CN=db.dof.go.th,O=DOF,C=TH",
    )
    params = pool_params(opts, LIMITS)
    descriptor = params.get_connect_string()
    assert "(PROTOCOL=tcps)" in descriptor and "(PORT=2484)" in descriptor
    assert params.wallet_location == str(tmp_path)
    assert params.ssl_server_dn_match is True
    assert params.ssl_server_cert_dn == "CN=db.dof.go.th,O=DOF,C=TH"
    assert "wallet-pw" not in descriptor


# --- prepare ------------------------------------------------------------------------------


def test_only_queries_are_prepared() -> None:
    assert FACTORY.type_name == "oracle"
    op = FACTORY.prepare(
        None,
        SqlOperation(
            query="-- licences\n/* newest first */ (SELECT * FROM lic WHERE pid = :pid "
            "OR pid = :pid__dashed OR to_char(d, 'HH24:MI') = :t)",
            max_rows=7,
        ),
        ["pid", "pid__dashed", "t"],
    )
    assert op.sql.startswith("-- licences")  # Oracle binds :names itself: SQL unchanged
    assert op.bind({"pid": "1", "pid__dashed": "1-2", "t": "x"}) == {
        "PID": "1",
        "PID__DASHED": "1-2",
        "T": "x",
    }
    assert op.max_rows == 7
    FACTORY.prepare(
        None, SqlOperation(query="WITH a AS (SELECT 1 x FROM dual) SELECT * FROM a"), []
    )
    for sql in ("UPDATE lic SET s = 'C'", "BEGIN proc(:pid); END;", "DELETE FROM lic"):
        with pytest.raises(PrepareError, match="only queries"):
            FACTORY.prepare(None, SqlOperation(query=sql), ["pid"])
    with pytest.raises(PrepareError, match="not a declared parameter"):
        FACTORY.prepare(None, SqlOperation(query="SELECT * FROM lic WHERE pid = :nope"), ["pid"])
    with pytest.raises(PrepareError, match="same bind name"):
        FACTORY.prepare(None, SqlOperation(query="SELECT 1 FROM dual"), ["pid", "PID"])


# --- errors, as python-oracledb raises them ---------------------------------------------


def _server_error(message: str, code: int, offset: int = 0) -> Exception:
    """An ORA- error as thin mode raises it (messages/base.pyx, _check_and_raise_exception)."""
    error = oracle_errors._Error(message, code=code, offset=offset)
    exc: Exception = error.exc_type(error)
    return exc


def _driver_error(number: int, **args: Any) -> Exception:
    exc: Exception = oracle_errors._create_exception(number, **args)
    return exc


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (_driver_error(oracle_errors.ERR_CALL_TIMEOUT_EXCEEDED, timeout=4000), BackendTimeout,
         "DPY-4024"),
        (_server_error("ORA-01013: user requested cancel of current operation", 1013),
         BackendTimeout, "ORA-01013"),
        (_server_error("ORA-03113: end-of-file on communication channel", 3113),
         BackendUnavailable, "DPY-4011"),
        (_server_error("ORA-01017: invalid credential or not authorized; logon denied", 1017),
         BackendUnavailable, "ORA-01017"),
        (_server_error("ORA-12514: Cannot connect to database. Service FISHER is not "
                       "registered with the listener", 12514), BackendUnavailable, "ORA-12514"),
        (_server_error("ORA-01033: ORACLE initialization or shutdown in progress", 1033),
         BackendUnavailable, "ORA-01033"),
        (_server_error("ORA-28000: The account is locked.", 28000), BackendUnavailable,
         "ORA-28000"),
        (_driver_error(oracle_errors.ERR_CONNECTION_CLOSED), BackendUnavailable, "DPY-4011"),
        (_driver_error(oracle_errors.ERR_INVALID_SERVICE_NAME, service_name="FISHER",
                       host="db", port=1521), BackendUnavailable, "DPY-6001"),
        (_server_error('ORA-00942: table or view "GW"."LIC" does not exist', 942, 14),
         BackendError, "ORA-00942"),
        (_server_error("ORA-01722: unable to convert string value containing 'x' to a number",
                       1722), BackendError, "ORA-01722"),
        (_server_error("ORA-01555: snapshot too old: rollback segment number 9 too small",
                       1555), BackendError, "ORA-01555"),
    ],
)  # fmt: skip
def test_error_mapping(exc: Exception, expected: type[Exception], code: str) -> None:
    assert isinstance(exc, oracledb.Error)
    mapped = map_error(exc)
    assert type(mapped) is expected, describe_error(exc)
    text = str(mapped)
    assert code in text and "Help:" not in text and "docs.oracle.com" not in text


def test_error_text_never_carries_a_parameter() -> None:
    pid = "1740100234561"
    exc = _server_error(f"ORA-01722: unable to convert string value containing '{pid}x'", 1722)
    text = str(map_error(exc, [f"{pid}x"]))
    assert pid not in text and "<parameter>" in text


# --- Thai text in a mis-declared character set ------------------------------------------
#
# Thin mode asks the server for AL32UTF8.  What the server sends for the stored bytes
# depends on NLS_CHARACTERSET; thin mode then decodes with this one line
# (impl/base/converters.pyx, convert_str_to_python):
#     rb.ptr[:rb.num_bytes].decode(ENCODING_UTF8, encoding_errors)
# and with ``bypass_decode=True`` hands over rb.ptr[:rb.num_bytes] itself.


def _sent_by_server(stored: bytes, charset: str) -> bytes:
    """Stored bytes as the server sends them to a UTF-8 client."""
    if charset in ("US7ASCII", "AL32UTF8"):
        return stored  # a subset of, or the same as, the client's: passed through
    py = {"WE8ISO8859P1": "latin-1", "WE8MSWIN1252": "cp1252", "TH8TISASCII": "tis-620"}
    return stored.decode(py[charset]).encode("utf-8")


CP874 = compile_chain(["cp874"], lookups={}, titles=())


def test_us7ascii_fails_in_the_driver_and_text_encoding_repairs_it() -> None:
    raw = _sent_by_server(STORED, "US7ASCII")
    with pytest.raises(UnicodeDecodeError) as err:
        raw.decode("utf-8", "strict")  # what thin mode does without bypass_decode
    mapped = text_error(err.value)
    assert isinstance(mapped, BackendError) and "text_encoding" in str(mapped)
    assert recover_text(raw, "US7ASCII", "cp874") == THAI  # with bypass_decode
    # TIS-620 bytes that happen to be valid UTF-8 (เธก is E0 B8 A1, which is UTF-8 "ม")
    lucky = "เธก".encode("cp874")
    assert lucky.decode("utf-8") == "ม"
    assert recover_text(_sent_by_server(lucky, "US7ASCII"), "US7ASCII", "cp874") == "เธก"


def test_we8iso8859p1_mojibake_is_repaired_by_the_transform_and_the_adapter() -> None:
    raw = _sent_by_server(STORED, "WE8ISO8859P1")
    driver_value = raw.decode("utf-8")  # thin mode without text_encoding: Latin mojibake
    assert not any("\u0e00" <= c <= "\u0e7f" for c in driver_value)
    assert CP874(driver_value) == THAI  # C1 controls (0x85, 0x93 ...) map back to bytes too
    assert recover_text(raw, "WE8ISO8859P1", "cp874") == THAI


def test_we8mswin1252_keeps_cp874_punctuation() -> None:
    raw = _sent_by_server(STORED, "WE8MSWIN1252")
    assert CP874(raw.decode("utf-8")) == THAI
    assert recover_text(raw, "WE8MSWIN1252", "cp874") == THAI


def test_th8tisascii_needs_nothing() -> None:
    text = "นางสาวมาลี ศรีสุข"
    raw = _sent_by_server(text.encode("tis-620"), "TH8TISASCII")
    assert raw.decode("utf-8") == text  # the server converted it
    assert CP874(raw.decode("utf-8")) == text  # the transform leaves Thai alone
    assert recover_text(raw, "TH8TISASCII", "cp874") == text  # and so does the adapter


def test_al32utf8_with_both_kinds_of_rows() -> None:
    unicode_row = "นายสมชาย ใจดี".encode()
    legacy_row = _sent_by_server(STORED, "AL32UTF8")
    assert recover_text(unicode_row, "AL32UTF8", "cp874") == "นายสมชาย ใจดี"
    assert recover_text(legacy_row, "AL32UTF8", "cp874") == THAI
    assert recover_text(b"1740100234561", "AL32UTF8", "cp874") == "1740100234561"


class _RecordingCursor:
    arraysize = 100

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def var(self, typ: Any, **kwargs: Any) -> str:
        self.calls.append((typ, kwargs))
        return "var"


def _fetch_as(bypass: bool, type_code: Any) -> tuple[Any, dict[str, Any]] | None:
    cursor = _RecordingCursor()
    result = output_type_handler(bypass)(cursor, SimpleNamespace(type_code=type_code))
    return cursor.calls[0] if result is not None else None


def test_output_type_handler() -> None:
    assert _fetch_as(False, oracledb.DB_TYPE_VARCHAR) is None
    assert _fetch_as(True, oracledb.DB_TYPE_VARCHAR) == (
        oracledb.DB_TYPE_VARCHAR,
        {"arraysize": 100, "bypass_decode": True},
    )
    assert _fetch_as(True, oracledb.DB_TYPE_CHAR) is not None
    assert _fetch_as(False, oracledb.DB_TYPE_CLOB) == (
        oracledb.DB_TYPE_LONG,
        {"arraysize": 100, "bypass_decode": False},
    )
    assert _fetch_as(True, oracledb.DB_TYPE_NVARCHAR) is None  # AL16UTF16: always right
    assert _fetch_as(True, oracledb.DB_TYPE_NUMBER) is None
    blob = _fetch_as(False, oracledb.DB_TYPE_BLOB)
    assert blob is not None and blob[0] is oracledb.DB_TYPE_LONG_RAW


def test_rows_are_repaired_per_column() -> None:
    adapter = FACTORY.create("o", _options(text_encoding="cp874"), LIMITS)
    row = adapter._row(
        ["PID", "FULLNAME", "FEE", "PHOTO"],
        ["1740100234561", _sent_by_server(STORED, "US7ASCII"), 12.5, None],
        "US7ASCII",
    )
    assert row == {"PID": "1740100234561", "FULLNAME": THAI, "FEE": 12.5, "PHOTO": None}


# --- no server: lazy open, fast failure -----------------------------------------------------


async def test_no_server_open_is_lazy_and_fetch_fails_fast() -> None:
    adapter = FACTORY.create("o", _options(dsn="127.0.0.1:1/FISHER", password="pw"), LIMITS)
    assert isinstance(adapter, Adapter) and isinstance(adapter, OracleAdapter)
    started = time.monotonic()
    await adapter.open()
    assert time.monotonic() - started < 0.5
    assert adapter.pool_stats() == PoolStats(size=0, in_use=0)  # nothing connected
    op = FACTORY.prepare(None, SqlOperation(query="SELECT * FROM lic WHERE pid = :p"), ["p"])
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="DPY-6005") as err:
            await adapter.fetch(op, {"p": "1740100234561"})
        assert time.monotonic() - started < 1.0
        assert "1740100234561" not in str(err.value) and "pw" not in str(err.value)
        with pytest.raises(BackendUnavailable):
            await adapter.probe()
        assert adapter.pool_stats() == PoolStats(size=0, in_use=0)
    finally:
        await adapter.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        await adapter.fetch(op, {"p": "1740100234561"})


async def test_unknown_tns_alias_is_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "tnsnames.ora").write_text("OTHER = (DESCRIPTION=(ADDRESS=(HOST=x)(PORT=1)))\n")
    adapter = FACTORY.create("o", _options(dsn="FISHDB", config_dir=tmp_path), LIMITS)
    await adapter.open()  # does not raise: health and calls say what is wrong
    try:
        for _ in range(2):
            with pytest.raises(BackendUnavailable, match='unable to find "FISHDB"'):
                await adapter.probe()
    finally:
        await adapter.close()
