"""requirements/lock*.txt as ``{name: version}``: pip-compile's hash-pinned format.

Only what pip-compile writes is read (``name==version \\`` then ``--hash=`` lines and
``# via`` comments); anything else is an error, so a hand edit is noticed.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["LOCKS", "canonical", "read_lock"]

LOCKS = Path(__file__).resolve().parent.parent / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+) \\$")
_HASH = re.compile(r"^ {4}--hash=sha256:[0-9a-f]{64}( \\)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or _HASH.match(line):
            continue
        m = _PIN.match(line)
        assert m, f"{path.name}:{n}: not a pip-compile line: {line!r}"
        pins[canonical(m.group(1))] = m.group(2)
    return pins
