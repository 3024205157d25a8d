"""Request ids: 128 random bits, as 32 hex digits (the shape of ``uuid4().hex``).

Every call that brings no usable id of its own gets one.  ``uuid.uuid4()`` makes
a system call for its 16 bytes and builds a UUID object around them (3 µs a
call); the same bits are taken here from the kernel 4 KiB at a time (0.3 µs).
A child process of ``--workers`` starts with an empty buffer, so no two
processes hand out the same bytes.
"""

from __future__ import annotations

import os

__all__ = ["new_request_id"]

_CHUNK = 4096


class _Ids:
    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def reset(self) -> None:
        self._buf, self._pos = b"", 0

    def take(self) -> str:
        pos = self._pos
        if pos >= len(self._buf):
            self._buf, pos = os.urandom(_CHUNK), 0
        self._pos = pos + 16
        return self._buf[pos : pos + 16].hex()


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.reset)


def new_request_id() -> str:
    """A fresh request id: 32 lower-case hex digits, unpredictable like ``uuid4``."""
    return _ids.take()
