"""Reading a service's rows for ``profile``: its query without the key, in batches.

A service's query selects one citizen's rows; the profile wants all of them,
mapped the same way.  The citizen-ID predicate (``COL IN (:personalId,
:personalId__dashed, ...)`` or ``COL = :personalId``, the forms ``scaffold``
and the guide write) is replaced by ``1 = 1`` and a final ORDER BY dropped (a
profile does not need the order, and sorting a big table costs more than
reading it).  Any other query is given with ``--query``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator, Iterator, Sequence

from adapters._sql import SqlOperation
from gateway.adapter import Adapter, Row, StreamingAdapter
from gateway.config.runtime import Backend
from gateway.params import ParamSpec

__all__ = ["ScanQueryError", "ctrl_c", "rows_of", "scan_sql"]


class ScanQueryError(ValueError):
    pass


def scan_sql(query: str, params: Sequence[ParamSpec]) -> str:
    """The service's query reading every row: its citizen-ID predicate made true."""
    for param in params:
        names = "|".join(re.escape(n) for n in param.bind_names)
        bind = rf":(?:{names})\b"
        in_list = rf"[\w.\"`\[\]]+\s+IN\s*\(\s*{bind}(?:\s*,\s*{bind})*\s*\)"
        equals = rf"[\w.\"`\[\]]+\s*=\s*{bind}"
        query = re.sub(in_list, "1 = 1", query, flags=re.I)
        query = re.sub(equals, "1 = 1", query, flags=re.I)
        if re.search(bind, query):
            raise ScanQueryError(
                f"the query uses :{param.name} in a form profile can not lift "
                "(only COLUMN IN (:p, ...) and COLUMN = :p): give the rows' query with --query"
            )
    return re.sub(r"\s+ORDER\s+BY\s+[^()]*$", "", query.rstrip().rstrip(";"), flags=re.I)


async def rows_of(
    backend: Backend,
    adapter: Adapter,
    sql: str,
    *,
    batch: int,
    limit: int | None,
    stop: asyncio.Event,
) -> AsyncIterator[Sequence[Row]]:
    """Batches of rows until the end, ``limit`` rows, or ``stop`` (Ctrl-C) is set; a
    batch in flight when ``stop`` is set is abandoned and its statement ended."""
    op = backend.factory.prepare(backend.options, SqlOperation(query=sql, max_rows=100_000), [])
    if not isinstance(adapter, StreamingAdapter):
        yield await adapter.fetch(op, {})  # an adapter without stream: one call, max_rows rows
        return
    stream = adapter.stream(op, {}, batch if limit is None else min(batch, limit))
    seen = 0
    try:
        while limit is None or seen < limit:
            step = asyncio.ensure_future(anext(stream, None))
            halt = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({step, halt}, return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            if step not in done:
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await step
                return
            rows = step.result()
            if rows is None:
                return
            if limit is not None:
                rows = rows[: limit - seen]
            seen += len(rows)
            yield rows
    finally:
        aclose = getattr(stream, "aclose", None)  # an async generator: ends its statement
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


@contextlib.contextmanager
def ctrl_c(stop: asyncio.Event) -> Iterator[None]:
    """While profiling, Ctrl-C sets ``stop`` (the report of what was read is printed)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
