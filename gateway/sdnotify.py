"""systemd's notify protocol: READY, RELOADING, STOPPING, STATUS and watchdog pings.

The protocol is one datagram on the socket named by ``$NOTIFY_SOCKET``; the
Python packages for it are unmaintained, and the whole of it is these few
lines.  Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["notify", "reloading", "watchdog_interval"]


def notify(*states: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not states:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode("utf-8"))
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between pings (half systemd's WatchdogSec), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 1_000_000 / 2)
    except ValueError:
        return None


def reloading() -> bool:
    """RELOADING=1 with the CLOCK_MONOTONIC time systemd matches it with; READY=1 ends it."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
