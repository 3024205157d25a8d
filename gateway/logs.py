"""Structured JSON logs to stdout (journald and log shippers read them as is).

The access log is an observer of call records.  It names the request id
that the audit record carries, never the queried citizen ID, names or
parameter values: the audit is the only place where access is recorded in
detail, and it is keyed.  For a failed call it also names the error detail
the client is not shown (a backend's message, a refused sign-in's reason).

Every record of every logger passes a :class:`RedactingFilter` on its way
out: any citizen ID (13 digits with a valid checksum, plain, dashed or
spaced) becomes its audit mask ``1-xxxx-xxxxx-x2-1`` and any configured
secret ``[secret]``, in the message, its arguments, a traceback and the
structured fields alike.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import orjson

from gateway.observe import CallRecord
from gateway.security.redact import REDACTOR, RedactingFilter

__all__ = ["AccessLog", "JsonFormatter", "RedactingFilter", "setup_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info and not record.exc_text:
            record.exc_text = REDACTOR.text(self.formatException(record.exc_info))
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO") -> logging.handlers.QueueListener:
    """Log through a queue: writing to a slow stdout or journald never blocks the loop."""
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(JsonFormatter())
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    handler = logging.handlers.QueueHandler(q)
    handler.addFilter(RedactingFilter())  # before the record is queued: nothing leaves unmasked
    root.handlers[:] = [handler]
    root.setLevel(level)
    listener = logging.handlers.QueueListener(q, stream, respect_handler_level=False)
    listener.start()
    return listener


class AccessLog:
    def __init__(self, enabled: bool = True) -> None:
        self._log = logging.getLogger("lc2_gateway.access")
        self._enabled = enabled

    def observe(self, rec: CallRecord) -> None:
        if not self._enabled or not self._log.isEnabledFor(logging.INFO):
            return
        self._log.info(
            "call",
            extra={
                "fields": {
                    "requestId": rec.request_id,
                    "service": rec.service,
                    "kind": rec.kind,
                    "consumer": rec.consumer,
                    "office": rec.office,
                    "status": rec.status,
                    "code": rec.code,
                    "rows": rec.rows,
                    "ms": round(rec.duration * 1000, 2),
                    "failedFields": list(rec.failed_fields) or None,
                    "client": rec.client_ip if rec.status >= 400 else None,
                    "error": rec.error if rec.status >= 400 else None,
                }
            },
        )
