"""Config problems, each with its place in the file and its line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gateway.config.loader import LoadedYaml, Path_, Problem

__all__ = ["Problems", "loc"]


class Problems:
    """Every problem of a file, kept rather than raised: one run reports them all."""

    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.items: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        self.items.append(Problem(path, self.loaded.line_of(path), message))

    def pydantic(self, prefix: Path_, exc: ValidationError) -> None:
        for err in exc.errors(include_url=False):
            self.schema(prefix, err)

    def schema(self, prefix: Path_, err: Mapping[str, Any]) -> None:
        # one of ValidationError.errors() (pydantic_core's ErrorDetails, not imported: it
        # is pydantic's dependency, not ours)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        self.add(prefix + loc(err), msg)


def loc(err: Mapping[str, Any]) -> Path_:
    return tuple(p for p in err["loc"] if isinstance(p, (str, int)))
