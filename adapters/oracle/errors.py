"""python-oracledb exceptions to gateway errors.

Server errors carry an ORA- number (``exc.args[0].code``), driver errors a
DPY- code (``full_code``); thin mode maps lost-session ORA errors to DPY-4011
and marks them ``is_session_dead``.  Messages keep the code and the text,
never the help URL the driver appends, never a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.adapter import BackendError, BackendTimeout, BackendUnavailable
from gateway.security.redact import redact_values

__all__ = ["describe_error", "error_code", "map_error"]

# Errors that mean the database, or our session with it, is not there.
_UNAVAILABLE_ORA = frozenset(
    {
        1012,  # not logged on
        1017,  # invalid username/password
        1033,  # initialization or shutdown in progress
        1034,  # ORACLE not available
        1089,  # immediate shutdown in progress
        1090,  # shutdown in progress
        1092,  # instance terminated
        2396,  # exceeded maximum idle time
        3113,  # end-of-file on communication channel
        3114,  # not connected
        3135,  # connection lost contact
        12170,  # connect timeout
        12505,  # listener does not know of SID
        12514,  # listener does not know of service
        12516,  # listener could not find a handler
        12518,  # listener could not hand off
        12519,  # no appropriate service handler
        12520,  # no handler for the server type
        12528,  # all instances blocking new connections
        12537,  # connection closed
        12541,  # no listener
        12547,  # lost contact
        28000,  # account locked
        28001,  # password expired
    }
)
_TIMEOUT_ORA = frozenset(
    {
        1013,  # user requested cancel (a break after call_timeout)
        3136,  # inbound connection timed out
        3156,  # OCI call timed out
        30006,  # resource busy; acquire with WAIT timeout expired
    }
)
_DPY_UNAVAILABLE = ("DPY-6",)  # listener refused, bad service, cannot connect, TLS ...
_DPY_UNAVAILABLE_CODES = frozenset(
    {"DPY-1001", "DPY-4000", "DPY-4011", "DPY-4027", "DPY-4033", "DPY-2018"}
)  # not connected, TNS alias unknown, connection closed, no config dir, idle, no wallet


def error_code(exc: BaseException) -> tuple[str, int, str]:
    """(full code like ORA-00942 or DPY-6005, ORA number or 0, message)."""
    info = exc.args[0] if exc.args else None
    full_code = str(getattr(info, "full_code", "") or "")
    code = int(getattr(info, "code", 0) or 0)
    message = str(getattr(info, "message", info if info is not None else exc))
    return full_code, code, message


def describe_error(exc: BaseException, args: Sequence[object] = ()) -> str:
    """``oracle ORA-nnnnn ClassName: message``: no help URL, no parameter value."""
    full_code, _, message = error_code(exc)
    lines = [ln for ln in message.splitlines() if ln.strip() and not ln.startswith("Help:")]
    message = " ".join(lines)
    if full_code and message.startswith(f"{full_code}:"):
        message = message[len(full_code) + 1 :]
    message = redact_values(message, args)
    message = re.sub(r"\s+", " ", message).strip()
    head = " ".join(p for p in ("oracle", full_code, type(exc).__name__) if p)
    return f"{head}: {message}" if message else head


def map_error(exc: BaseException, args: Sequence[object] = ()) -> Exception:
    """The gateway error for an exception raised by python-oracledb."""
    text = describe_error(exc, args)
    full_code, code, _ = error_code(exc)
    info = exc.args[0] if exc.args else None
    if full_code == "DPY-4024" or code in _TIMEOUT_ORA:
        return BackendTimeout(text)
    if (
        code in _UNAVAILABLE_ORA
        or full_code.startswith(_DPY_UNAVAILABLE)
        or full_code in _DPY_UNAVAILABLE_CODES
        or getattr(info, "is_session_dead", False)
        or isinstance(exc, OSError)
    ):
        return BackendUnavailable(text)
    return BackendError(text)
