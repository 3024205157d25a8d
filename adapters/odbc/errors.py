"""pyodbc errors to gateway errors, and what each DBMS behind a driver needs.

Errors are classified by SQLSTATE first (connection and authorization
classes, timeouts, cancels), then by the DBMS's native error number, which
drivers append to the message and often report under the catch-all HY000.
Messages keep the SQLSTATE, native number and server text, never a bound
parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from gateway.adapter import BackendError, BackendTimeout, BackendUnavailable
from gateway.security.redact import redact_values

__all__ = [
    "Dialect",
    "cancel_statement",
    "describe_error",
    "dialect_of",
    "is_connection_error",
    "map_error",
    "session_id_query",
    "session_statements",
]

Dialect = Literal["postgresql", "mariadb", "mysql", "mssql", "sqlite", "oracle", "access", "other"]

# --- errors ---------------------------------------------------------------------------

_UNAVAILABLE_CLASSES = ("08", "28", "IM")  # connection, authorization, driver manager
_UNAVAILABLE_STATES = frozenset(
    {
        "HYT01",  # connection timeout expired
        "3D000",  # PostgreSQL: the database does not exist
        "53300",  # PostgreSQL: too many connections
        "57P01",  # PostgreSQL: admin shutdown
        "57P02",  # PostgreSQL: crash shutdown
        "57P03",  # PostgreSQL: cannot connect now
    }
)
_TIMEOUT_STATES = frozenset({"HYT00", "HY008", "57014"})  # timeout, cancelled, query_canceled

# Native error numbers, by DBMS family: drivers report many of these as HY000.
_MYSQL_UNAVAILABLE = {
    *(1040, 1041, 1045, 1049, 1053, 1129, 1130, 1152, 1203, 1226, 1927),  # server refuses us
    *(2002, 2003, 2005, 2006, 2013, 2055),  # client: cannot connect, server gone, lost
    4031,  # MySQL 8: idle session closed by the server
}
_MSSQL_UNAVAILABLE = {
    *(4060, 18452, 18456, 40613),  # cannot open database, login failed, Azure DB unavailable
    *(233, 10053, 10054, 10060, 10061),  # no process on the pipe, socket errors
    20009,  # FreeTDS: unable to connect, server unavailable
}
_NATIVE_UNAVAILABLE: dict[str, frozenset[int]] = {
    "mysql": frozenset(_MYSQL_UNAVAILABLE),
    "mssql": frozenset(_MSSQL_UNAVAILABLE),
}
_NATIVE_TIMEOUT: dict[str, frozenset[int]] = {
    # lock wait timeout, KILL QUERY, MariaDB max_statement_time, MySQL max_execution_time
    "mysql": frozenset({1205, 1317, 1969, 3024}),
    "mssql": frozenset({1222}),  # lock request time out (SET LOCK_TIMEOUT)
}
_NATIVE = re.compile(r"\((-?\d+)\)\s*(?:\(SQL\w+\))?\s*$")
_NEAR_STATEMENT = re.compile(r"near '.*' at line (\d+)", re.DOTALL)
_QUOTED = re.compile(r"'[^']*'")


def _family(dialect: str) -> str:
    return "mysql" if dialect in ("mariadb", "mysql") else dialect


def _state_and_message(exc: BaseException) -> tuple[str | None, str]:
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        return args[0], args[1]
    return None, str(args[0]) if args else type(exc).__name__


def _native_code(message: str) -> int | None:
    m = _NATIVE.search(message)
    return int(m.group(1)) if m else None


def describe_error(
    exc: BaseException, params: Sequence[object] = (), *, password: str | None = None
) -> str:
    """``odbc SQLSTATE (native) ClassName: message`` without any parameter value."""
    state, message = _state_and_message(exc)
    native = _native_code(message)
    message = _NATIVE.sub("", message)
    if state:
        message = message.replace(f"[{state}] ", "", 1)
    message = _NEAR_STATEMENT.sub(r"near <statement omitted> at line \1", message)
    if state and state.startswith(("22", "23")):
        message = _QUOTED.sub("'<value>'", message)  # data errors quote the offending value
    message = redact_values(message, params)
    if password:  # however short: a driver may echo its connection string
        message = message.replace(password, "<password>")
    message = re.sub(r"\s+", " ", message).strip()
    head = " ".join(
        p for p in ("odbc", state, f"({native})" if native else None, type(exc).__name__) if p
    )
    return f"{head}: {message}" if message else head


def map_error(exc: BaseException, args: Sequence[object], dialect: str = "other") -> Exception:
    """The gateway error for a pyodbc error raised by a statement."""
    text = describe_error(exc, args)
    state, message = _state_and_message(exc)
    native = _native_code(message)
    family = _family(dialect)
    if state in _TIMEOUT_STATES or native in _NATIVE_TIMEOUT.get(family, ()):
        return BackendTimeout(text)
    lost = state is not None and (
        state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    )
    if lost or native in _NATIVE_UNAVAILABLE.get(family, ()):
        return BackendUnavailable(text)
    return BackendError(text)


def is_connection_error(exc: BaseException, dialect: str) -> bool:
    """The connection can not be trusted any more after this error."""
    return isinstance(map_error(exc, (), dialect), BackendUnavailable)


# --- the DBMS behind the driver ---------------------------------------------------------


def dialect_of(dbms_name: str) -> Dialect:
    name = dbms_name.lower()
    for needle, dialect in (
        ("postgres", "postgresql"),
        ("mariadb", "mariadb"),
        ("mysql", "mysql"),
        ("sql server", "mssql"),
        ("sqlite", "sqlite"),
        ("oracle", "oracle"),
        ("access", "access"),
    ):
        if needle in name:
            return dialect  # type: ignore[return-value]
    return "other"


def session_id_query(dialect: Dialect) -> str | None:
    """How a session learns its own id, for a cancel sent from another session."""
    return {
        "postgresql": "SELECT pg_backend_pid()",
        "mariadb": "SELECT CONNECTION_ID()",
        "mysql": "SELECT CONNECTION_ID()",
    }.get(dialect)


def cancel_statement(dialect: Dialect, session_id: int) -> str | None:
    """The statement that, run on another session, stops what ``session_id`` is running."""
    ident = int(session_id)  # from the server itself; int() keeps the literal a number
    if dialect == "postgresql":
        return f"SELECT pg_cancel_backend({ident})"
    if dialect in ("mariadb", "mysql"):
        return f"KILL QUERY {ident}"
    return None


def session_statements(dialect: Dialect, *, read_only: bool, server_timeout: float) -> list[str]:
    """Read-only session and a server-side statement timeout, where the DBMS has them."""
    out: list[str] = []
    if dialect == "postgresql":
        if read_only:
            out.append("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        out.append(f"SET statement_timeout = {int(server_timeout * 1000)}")
    elif dialect in ("mariadb", "mysql"):
        if read_only:
            out.append("SET SESSION TRANSACTION READ ONLY")
        if dialect == "mariadb":
            out.append(f"SET SESSION max_statement_time = {server_timeout:.3f}")
        else:
            out.append(f"SET SESSION max_execution_time = {int(server_timeout * 1000)}")
    elif dialect == "sqlite" and read_only:
        out.append("PRAGMA query_only = ON")
    return out
