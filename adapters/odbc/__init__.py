"""ODBC backend (pyodbc over unixODBC): SQL Server through FreeTDS or Microsoft's
driver, Access, and any other database with an ODBC driver.

pyodbc calls block, so they run in a thread pool owned by the adapter, one
thread per pool connection (``pool_size``), never in the event loop's default
executor.  aioodbc does the same thing with less control: its pool connects
while holding the lock every other ``acquire`` waits on, uses the loop's
shared default executor, and hands a connection back to the pool while a
cancelled statement is still running in its thread (see
docs/adapters-odbc-oracle-files.md for the measurements).  Here a pool slot is
a thread plus its connection, and a slot is only free again when its thread
is: a statement that ignores its cancel holds one slot, visibly, instead of
piling up work behind the pool's back.

Timeouts: at ``query_timeout``, or when the caller goes away, a PostgreSQL or
MariaDB/MySQL statement is stopped from a second session of the adapter's own
(``pg_cancel_backend`` / ``KILL QUERY`` with the session id each connection
learns when it is made), and its connection is discarded.  SQLCancel is not
used: on a statement between two ODBC calls the drivers close its result set
under the worker's fetch (see pool.py).  Elsewhere the statement runs to its
end.  As a backstop the driver's own query timeout is set where the driver
supports it, and PostgreSQL/MariaDB/MySQL sessions get a server-side
statement timeout.

Read-only: ODBC's ``SQL_ATTR_ACCESS_MODE`` is only a hint (psqlodbc, MariaDB
and SQLite drivers accept it and still write), so the session is made
read-only with the DBMS's own statement where one exists; SQL Server has
none, and there the login's grants are the protection.

Text: ``decoding`` maps to pyodbc ``setdecoding``; FreeTDS without
``ClientCharset``, Access and SQLite files written by old programs hand back
TIS-620 bytes in CHAR/VARCHAR columns, read with ``decoding: {char: cp874}``.
A byte the codec cannot map becomes U+FFFD instead of failing the whole call
(``decoding_errors: strict`` to fail instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from adapters._sql import CompiledQuery, SqlOperation, compile_named
from adapters.odbc.errors import describe_error, map_error
from adapters.odbc.options import OdbcDecoding, OdbcOptions, build_connection_string
from adapters.odbc.pool import OdbcAdapter
from gateway.adapter import BackendLimits, OptionsModel

__all__ = [
    "FACTORY",
    "OdbcAdapter",
    "OdbcDecoding",
    "OdbcFactory",
    "OdbcOptions",
    "build_connection_string",
    "describe_error",
    "map_error",
]


class OdbcFactory:
    type_name: ClassVar[str] = "odbc"
    options_model: ClassVar[type[OptionsModel]] = OdbcOptions
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> CompiledQuery:
        op: SqlOperation = operation
        return compile_named(op.query, "qmark", param_names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> OdbcAdapter:
        return OdbcAdapter(name, options, limits)


FACTORY = OdbcFactory()
