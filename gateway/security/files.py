"""State files (audit, keys, quotas, lock-outs): private to the service user, whatever the umask.

The audit holds officers' citizen IDs and the counters name callers'
addresses; the systemd unit's ``UMask=0077`` keeps them private, but a
gateway started by hand (umask 022) would have created them 0644.  So each
state file is created 0600 before SQLite opens it (SQLite gives its ``-wal``
and ``-shm`` files the mode of the database), and a store found readable by
group or others is reported at start-up.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["create_private", "exposed"]

log = logging.getLogger("lc2_gateway.files")


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist yet; an existing file is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def exposed(path: Path) -> str | None:
    """Why ``path`` is readable by others than its owner (``mode 0644``), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"mode {stat.S_IMODE(mode):04o}"
    return None
