"""Citizen IDs and configured secrets out of text: log records and error bodies.

A run of 13 digits (or the dashed / spaced spelling ``1-2345-67890-12-1``)
that passes the citizen-ID checksum becomes the same mask the audit trail
shows (``1-xxxx-xxxxx-x2-1``), so a log line and an audit row can still be
matched by eye.  Thirteen digits glued to letters (a hex request id) are
left alone: only a standalone number is a citizen ID.  Every configured
secret (passwords, keys: the values the config takes from the environment)
becomes ``[secret]``.

One process-wide :data:`REDACTOR` serves the logging filter and the error
renderer; each config generation adds its secrets to it (never removes, so a
secret of an older generation stays hidden too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.transforms import check_digit, mask_pid

__all__ = ["REDACTOR", "RedactingFilter", "Redactor", "looks_like_pid"]

_PID = re.compile(
    r"(?<![0-9A-Za-z])"
    r"(?:[0-9]{13}|[0-9][- ][0-9]{4}[- ][0-9]{5}[- ][0-9]{2}[- ][0-9])"
    r"(?![0-9A-Za-z])"
)
_NON_DIGIT = re.compile(r"[^0-9]")
# a shorter value would blank out ordinary words and numbers all over the logs
MIN_SECRET_LENGTH = 6
_SCALARS = frozenset({int, float, bool})


def _valid(digits: str) -> bool:
    return check_digit(digits[:12]) == ord(digits[12]) - 48


def _mask(m: re.Match[str]) -> str:
    digits = _NON_DIGIT.sub("", m.group(0))
    return mask_pid(digits) if _valid(digits) else m.group(0)


def looks_like_pid(text: str) -> bool:
    """True if ``text`` contains a citizen ID with a valid checksum, in any usual spelling."""
    return any(_valid(_NON_DIGIT.sub("", m.group(0))) for m in _PID.finditer(text))


class Redactor:
    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._secret_re: re.Pattern[str] | None = None
        self._shortest = 13  # a text shorter than this can hold neither a citizen ID nor a secret

    def add_secrets(self, secrets: Iterable[str]) -> None:
        new = self._secrets | {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        if new == self._secrets:
            return
        self._secrets = frozenset(new)
        # longest first, so a secret that contains another is hidden whole
        alternatives = sorted(new, key=len, reverse=True)
        self._secret_re = re.compile("|".join(re.escape(s) for s in alternatives))
        self._shortest = min(13, len(alternatives[-1]))

    def text(self, text: str) -> str:
        n = len(text)
        if n < self._shortest:  # most log fields: a service name, a status, a code
            return text
        if n >= 13:
            text = _PID.sub(_mask, text)
        if self._secret_re is not None:
            text = self._secret_re.sub("[secret]", text)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it redacted (dicts, lists and tuples walked).

        Returns ``value`` itself when nothing in it needed masking, so the access log's
        fields, a dozen short strings and numbers on every call, cost a type check each.
        """
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind in _SCALARS:
            return value
        if isinstance(value, Mapping):
            changed: dict[Any, Any] | None = None
            shortest = self._shortest
            for k, v in value.items():
                kind = type(v)
                if kind is str:
                    if len(v) < shortest:
                        continue
                    new = self.text(v)
                elif v is None or kind in _SCALARS:
                    continue
                else:
                    new = self.value(v)
                if new is not v:
                    changed = changed if changed is not None else dict(value)
                    changed[k] = new
            return value if changed is None else changed
        if isinstance(value, (list, tuple)):
            items = [self.value(v) for v in value]
            same = all(a is b for a, b in zip(items, value, strict=True))
            return value if same else items
        if isinstance(value, str):
            return self.text(value)
        return value


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    """Applied to every record a handler emits: message, arguments, exception and extra fields."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self._redactor
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg, record.args = r.text(message), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = r.text(record.exc_text)
        if record.stack_info:
            record.stack_info = r.text(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = r.value(fields)
        return True
