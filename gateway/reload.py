"""What an applied reload leaves in the audit trail.

One record of kind ``reload`` per config swapped in, written through the
audit's own writer and record format: the old and the new config version,
and what changed in services, grants and backends (from
:mod:`gateway.config.summary`), so "who could see what, when" is answerable
from the trail alone.
"""

from __future__ import annotations

import time
from typing import Final

from gateway.config.runtime import Settings
from gateway.config.summary import Change, diff, summarise
from gateway.ids import new_request_id
from gateway.observe import CallRecord

__all__ = ["KIND", "reload_record"]

KIND: Final = "reload"


def _text(changes: list[Change], section: str) -> str:
    mine = [c for c in changes if c.section == section]
    return "; ".join(
        f"{c.op}{c.name}" + (f" ({', '.join(c.details)})" if c.details else "") for c in mine
    )


def reload_record(old: Settings, new: Settings) -> CallRecord:
    changes = diff(summarise(old), summarise(new))
    rec = CallRecord(
        request_id=new_request_id(),
        started=time.time(),
        method="RELOAD",
        path=new.source,
        client_ip="",
        kind=KIND,
        params={
            "old_version": old.version,
            "new_version": new.version,
            "grants": _text(changes, "grants"),
            "services": _text(changes, "services"),
            "backends": _text(changes, "backends"),
        },
    )
    rec.status, rec.code, rec.rows = 200, "000", len(changes)
    return rec
