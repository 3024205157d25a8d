"""What the audit keeps of one call: the columns of a record, built from a CallRecord.

A record's *content* is every column that describes the call; the chain
columns (``chain``, ``seq``, ``segment``, ``prev_hash``, ``row_hash``) are
added by the writer when the record takes its place in the chain.  The
queried citizen ID is never kept in clear: ``subject_hash`` is an
HMAC-SHA256 under a key held outside the store.  Every free-text field the
caller controls (user agent, method, path, unknown parameters'
names, the error) has each citizen ID in it masked, in any spelling.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import orjson

from gateway.observe import CallRecord
from gateway.security.redact import mask_all_pids
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


@functools.lru_cache(maxsize=4)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def subject_hash(key: bytes, pid: str) -> str:
    # a copy of the keyed state skips OpenSSL's digest lookup and key set-up on every call
    mac = _keyed(key).copy()
    mac.update(pid.encode("ascii", "replace"))
    return mac.hexdigest()


def mask_text(text: str | None) -> str | None:
    """A caller-controlled field with every citizen ID, in any spelling, masked."""
    return mask_all_pids(text) if text else text


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
            # an unknown parameter's name is the caller's text too (``?1740100234561=1``)
            params[mask_all_pids(name)] = "<unknown parameter: value not kept>"
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
        rec.request_id,  # one shaped like a citizen ID was replaced when the call arrived
        rec.consumer,
        rec.office,
        rec.officer,  # the officer's own ID, kept by design: who asked
        rec.client_ip,
        mask_text(rec.user_agent),
        mask_text(rec.method),
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
        mask_text(rec.error) or None,
    )
