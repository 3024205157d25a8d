"""Citizen IDs, configured secrets and bound values out of text: one redaction for every output.

Citizen IDs are found in any spelling a person or a legacy system writes
them: 13 digits, dashed (``1-2345-67890-12-1``), spaced, with separators
anywhere, in Thai digits (``๑๒๓…``).  Each becomes the same mask the audit
trail shows (``1-xxxx-xxxxx-x2-1``), so a log line and an audit row can
still be matched by eye.  Two strictnesses:

* logs and error bodies (:data:`REDACTOR`, :class:`RedactingFilter`) mask a
  standalone number whose check digit is right: a 13-digit timestamp or a
  run inside a hex request id is left alone;
* the audit's free-text fields (:func:`mask_all_pids`) mask every
  13-digit run, checksum or not, glued to letters or not: what a caller
  wrote there is kept only as evidence of what was sent.

Every configured secret (passwords, keys: the values the config takes from
the environment) becomes ``[secret]``.  :func:`redact_values` takes the
values a statement bound out of a driver's message, in every spelling the
adapters bind or a server quotes them; every adapter uses it.

One process-wide :data:`REDACTOR` serves the logging filter and the error
renderer; each config generation adds its secrets to it (never removes, so a
secret of an older generation stays hidden too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.transforms import check_digit, mask_pid

__all__ = [
    "MIN_VALUE_LENGTH",
    "REDACTOR",
    "RedactingFilter",
    "Redactor",
    "looks_like_pid",
    "mask_all_pids",
    "redact_values",
    "value_spellings",
]

_D = "[0-9\u0e50-\u0e59]"  # an ASCII or a Thai digit
_S = r"[-\s]"  # a separator a person types between digits
_PID_BODY = f"{_D}(?:{_S}?{_D}){{12}}"
# standalone: not glued to letters or more digits (a hex request id is not a citizen ID)
_PID = re.compile(f"(?<![0-9A-Za-z\u0e50-\u0e59]){_PID_BODY}(?![0-9A-Za-z\u0e50-\u0e59])")
# anywhere: only more digits around it make it something else
_PID_ANYWHERE = re.compile(f"(?<!{_D}){_PID_BODY}(?!{_D})")
_NOT_DIGIT = re.compile("[^0-9\u0e50-\u0e59]")
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
# a shorter value would blank out ordinary words and numbers all over the logs
MIN_SECRET_LENGTH = 6
_SCALARS = frozenset({int, float, bool})


def _digits(spelled: str) -> str:
    return _NOT_DIGIT.sub("", spelled).translate(_THAI_DIGITS)


def _valid(digits: str) -> bool:
    return check_digit(digits[:12]) == ord(digits[12]) - 48


def _mask(m: re.Match[str]) -> str:
    digits = _digits(m.group(0))
    return mask_pid(digits) if _valid(digits) else m.group(0)


def looks_like_pid(text: str) -> bool:
    """True if ``text`` contains a citizen ID with a valid checksum, in any usual spelling."""
    return any(_valid(_digits(m.group(0))) for m in _PID.finditer(text))


def mask_all_pids(text: str) -> str:
    """Every 13-digit run in ``text``, in any spelling, masked: for the audit's free text."""
    return _PID_ANYWHERE.sub(lambda m: mask_pid(_digits(m.group(0))), text)


# -- bound values out of driver messages ------------------------------------------------------

# Values shorter than this (a sex code, a village number) identify nobody, and replaced
# wherever they occur would blot out versions, positions and codes in the message; they are
# removed only where the message quotes them.
MIN_VALUE_LENGTH = 4
_BACKSLASHED = str.maketrans(
    {"\\": "\\\\", "'": "\\'", '"': '\\"', "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
)


def value_spellings(value: object) -> set[str]:
    """The ways a bound value can show up inside a server or driver message."""
    if value is None or isinstance(value, bool):
        return set()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        texts = {raw.decode("latin-1"), raw.decode("utf-8", "replace"), raw.hex()}
    else:
        text = str(value)
        texts = {text, text.strip(), repr(value)}
        texts |= {t.replace("'", "''") for t in list(texts)}  # SQL-quoted
        texts |= {t.translate(_BACKSLASHED) for t in list(texts)}  # MySQL-escaped
        digits = text.strip()
        if len(digits) == 13 and digits.isascii() and digits.isdigit():
            # a citizen ID the adapter may have bound dashed or spaced
            d = digits
            dashed = f"{d[0]}-{d[1:5]}-{d[5:10]}-{d[10:12]}-{d[12]}"
            texts |= {dashed, dashed.replace("-", " ")}
    out = {t for t in texts if len(t) >= MIN_VALUE_LENGTH}
    for t in texts:
        if 0 < len(t) < MIN_VALUE_LENGTH:
            out |= {f"'{t}'", f'"{t}"'}
    return out


def redact_values(message: str, values: Sequence[object], placeholder: str = "<parameter>") -> str:
    """``message`` with every bound value, in any spelling, replaced by ``placeholder``."""
    needles = sorted({t for v in values for t in value_spellings(v)}, key=len, reverse=True)
    for needle in needles:
        message = message.replace(needle, placeholder)
    return message


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
                new: Any  # a string or a walked value: compiled code checks a narrower type
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
