"""What the audit keeps of one call: the columns of a record, built from a CallRecord.

A record's *content* is every column that describes the call; the chain
columns (``chain``, ``seq``, ``segment``, ``prev_hash``, ``row_hash``) are
added by the writer when the record takes its place in the chain.  The
queried citizen ID is never kept in clear: ``subject_hash`` is an
HMAC-SHA256 under a key held outside the store.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any

import orjson

from gateway.observe import CallRecord
from gateway.transforms import is_valid_pid, mask_pid

if TYPE_CHECKING:
    from gateway.config.runtime import Service

__all__ = [
    "CHAIN_COLUMNS",
    "CONTENT_COLUMNS",
    "Content",
    "content_from_call",
    "iso_utc",
    "mask_text",
    "subject_hash",
]

# Order matters: it is the order in which a record is hashed.  Never reorder;
# add new columns at the end together with a new hash version (see chain.py).
CONTENT_COLUMNS: tuple[str, ...] = (
    "ts",
    "request_id",
    "consumer",
    "office",
    "officer",
    "client_ip",
    "user_agent",
    "method",
    "path",
    "service",
    "kind",
    "sandbox",
    "subject_hash",
    "subject_hint",
    "params",
    "status",
    "code",
    "rows",
    "latency_ms",
    "backend_ms",
    "error",
)
CHAIN_COLUMNS: tuple[str, ...] = ("chain", "seq", "segment", "prev_hash", "row_hash")

Content = tuple[Any, ...]  # values in CONTENT_COLUMNS order

_PID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{13}(?![0-9])")


@functools.lru_cache(maxsize=4)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def subject_hash(key: bytes, pid: str) -> str:
    # a copy of the keyed state skips OpenSSL's digest lookup and key set-up on every call
    mac = _keyed(key).copy()
    mac.update(pid.encode("ascii", "replace"))
    return mac.hexdigest()


def mask_text(text: str) -> str:
    return _PID_IN_TEXT.sub(lambda m: mask_pid(m.group(0)), text)


def iso_utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def _ms(seconds: float) -> float:
    # always a float: SQLite's REAL and PostgreSQL's double give floats back, and the
    # hash of 5 differs from the hash of 5.0
    return float(round(seconds * 1000, 3))


def content_from_call(rec: CallRecord, service: Service | None, key: bytes) -> Content:
    params: dict[str, Any] = {}
    subject: str | None = None
    hint: str | None = None
    if rec.kind == "reload":  # the gateway's own record of a config change: no citizen in it
        params = dict(rec.params)
    for name, raw in rec.params.items() if rec.kind != "reload" else ():
        spec = service.param_index.get(name) if service else None
        hashed = None
        if spec is None:
            params[name] = "<unknown parameter: value not kept>"
        elif spec.audit == "hash":
            hashed = subject_hash(key, raw)
            params[name] = {"hmac": hashed}
        elif spec.audit == "omit":
            params[name] = "<omitted>"
        else:
            params[name] = raw
        if service is not None and name == service.subject_param:
            subject = hashed or subject_hash(key, raw)
            hint = mask_pid(raw) if is_valid_pid(raw) else None
    return (
        iso_utc(rec.started),
        rec.request_id,
        rec.consumer,
        rec.office,
        rec.officer,
        rec.client_ip,
        rec.user_agent,
        rec.method,
        mask_text(rec.path),
        rec.service,
        rec.kind,
        int(rec.sandbox),
        subject,
        hint,
        orjson.dumps(params).decode(),
        rec.status,
        rec.code,
        rec.rows,
        _ms(rec.duration),
        None if rec.backend_duration is None else _ms(rec.backend_duration),
        mask_text(rec.error) if rec.error else None,
    )
