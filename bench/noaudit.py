"""Run the gateway with its audit writer doing nothing, for the audit on/off comparison.

Only the benchmark does this: the product has no switch to turn the audit off,
because LC2 requires every access to be traceable.  The writer is replaced in
this process alone (no record built, no store opened), so the difference to the
ordinary gateway is exactly what the audit costs a call.

    python bench/noaudit.py serve -c GW.yaml     # with the gateway's tree on PYTHONPATH
"""

from __future__ import annotations

import sys
from typing import Any

from gateway.audit.writer import AuditWriter
from gateway.cli import main


async def _nothing(self: AuditWriter, *args: Any, **kwargs: Any) -> None:
    return None


if __name__ == "__main__":
    AuditWriter.start = _nothing  # type: ignore[method-assign]
    AuditWriter.commit = _nothing  # type: ignore[method-assign]
    AuditWriter.close = _nothing  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
