"""Oracle backend (python-oracledb in thin mode: pure Python, no Instant Client).

The pool is ``create_pool_async`` with ``min=0``: nothing connects until the
first call, so the gateway starts while the database is down.  Each call sets
``call_timeout`` to ``query_timeout``; when it expires the driver breaks the
round trip on the server and raises DPY-4024, and the connection is dropped
from the pool rather than trusted again.

Connection strings: ``dsn`` is whatever python-oracledb accepts - EZConnect
(``host:1521/service``, ``tcps://host:2484/service``), a full descriptor, or a
TNS alias looked up in ``tnsnames.ora`` under ``config_dir``.  TLS uses the
PEM wallet (``ewallet.pem``) under ``wallet_location``.

Thai text in the wrong character set.  Thin mode always asks the server for
UTF-8 and decodes CHAR/VARCHAR2 with ``bytes.decode("utf-8")``.  What arrives
depends on the database character set (``NLS_CHARACTERSET``):

* TH8TISASCII, AL32UTF8 with real Unicode: the server converts; proper Thai.
* WE8ISO8859P1, WE8MSWIN1252 holding TIS-620 bytes written through an old
  client with a matching NLS_LANG: the server converts each byte as a Latin
  character, the driver returns mojibake (``"Ê¹"``), which the gateway's
  ``cp874`` transform re-decodes - or set ``text_encoding: cp874`` to have
  the adapter do it exactly.
* US7ASCII (or AL32UTF8 filled through such a client): the server passes the
  stored bytes through unconverted, and the driver's UTF-8 decode fails with
  UnicodeDecodeError for the whole call.  ``text_encoding: cp874`` fetches
  these columns undecoded (``bypass_decode``) and decodes them here.

Only queries run here (``SELECT``/``WITH``, checked at start-up): Oracle has
no read-only session, so give the gateway a login with SELECT grants only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from adapters._sql import SqlOperation, compile_named
from adapters.oracle.adapter import QUERY_START, OracleAdapter, OracleQuery
from adapters.oracle.errors import describe_error, map_error
from adapters.oracle.options import OracleOptions, pool_params
from adapters.oracle.text import output_type_handler, recover_text, text_error
from gateway.adapter import BackendLimits, OptionsModel, PrepareError

__all__ = [
    "FACTORY",
    "OracleAdapter",
    "OracleFactory",
    "OracleOptions",
    "OracleQuery",
    "describe_error",
    "map_error",
    "output_type_handler",
    "pool_params",
    "recover_text",
    "text_error",
]


class OracleFactory:
    type_name: ClassVar[str] = "oracle"
    options_model: ClassVar[type[OptionsModel]] = OracleOptions
    operation_model: ClassVar[type[OptionsModel]] = SqlOperation

    def prepare(self, options: Any, operation: Any, param_names: Sequence[str]) -> OracleQuery:
        op: SqlOperation = operation
        if not QUERY_START.match(op.query):
            raise PrepareError("only queries (SELECT or WITH) run on an Oracle backend", ("query",))
        folded: dict[str, str] = {}
        for name in param_names:
            other = folded.setdefault(name.upper(), name)
            if other != name:
                raise PrepareError(
                    f"parameters {other!r} and {name!r} are the same bind name to Oracle",
                    ("query",),
                )
        # compile_named checks every :name is declared; Oracle binds them by name itself.
        compiled = compile_named(op.query, "qmark", param_names, max_rows=op.max_rows)
        names = tuple(dict.fromkeys(compiled.order))
        return OracleQuery(sql=op.query, names=names, max_rows=op.max_rows)

    def create(self, name: str, options: Any, limits: BackendLimits) -> OracleAdapter:
        return OracleAdapter(name, options, limits)


FACTORY = OracleFactory()
