"""The audit store's child process with a fault, for tests: ``python tests/audit_child.py MODE``.

MODE is ``slow-link:SECONDS`` (linking the first batch sleeps first: its transaction
outlives its callers' deadline), ``die-before-commit:MARKER`` (the child ends once it has the
records, before its commit) or ``die-after-commit:MARKER`` (it ends after its commit,
before it answers).  A child dies only if the file MARKER does not exist yet, and makes
it: the child started after it runs as the product's, as after a real crash.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit import chain, store_process, store_sqlite


def child_command(mode: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), mode]


def _first(marker: str) -> bool:
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _install(mode: str) -> None:
    mode, _, marker = mode.partition(":") if mode.startswith("die-") else (mode, "", "")
    if marker and not _first(marker):
        return
    if mode.startswith("slow-link:"):
        seconds = [float(mode.partition(":")[2])]

        def slow(*args: Any, **kw: Any) -> Any:
            time.sleep(seconds.pop() if seconds else 0.0)
            return chain.link(*args, **kw)

        store_sqlite.link = slow  # type: ignore[attr-defined]
    elif mode == "die-before-commit":

        def die(*args: Any, **kw: Any) -> Any:
            os._exit(70)

        store_sqlite.link = die  # type: ignore[attr-defined]
    elif mode == "die-after-commit":
        send = store_process._send

        def send_or_die(pipe: Any, message: Any) -> None:
            head = message[1][0] if message[0] == "ok" and isinstance(message[1], tuple) else None
            if head is not None:
                os._exit(70)  # committed; the answer never leaves
            send(pipe, message)

        store_process._send = send_or_die
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    _install(sys.argv[1])
    store_process.main()
