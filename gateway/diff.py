"""``lc2-gateway diff``: what a reload of a file would change in the running gateway.

The running gateway describes what it serves on its admin listener
(``GET /-/config``, :mod:`gateway.config.summary`); the file is checked and
described the same way here, and the two compared: services, grants (which
consumer may call which service for which offices, which fields) and
backends.  ``reload`` asks the same endpoint which file the gateway runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.check import load_checked
from gateway.config.runtime import Settings
from gateway.config.summary import diff, render_changes, summarise

__all__ = ["admin_url", "register", "running_config", "running_or_exit", "same_file"]


def admin_url(settings: Settings, path: str) -> str:
    host = "127.0.0.1" if settings.admin.host in ("0.0.0.0", "::") else settings.admin.host
    return f"http://{host}:{settings.admin.port}{path}"


def running_config(settings: Settings) -> dict[str, Any] | str:
    """The running gateway's summary, or why it could not be had."""
    url = admin_url(settings, "/-/config")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as err:
        return f"the gateway at {url} answered HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"no gateway answering at {url}: {err}"


def same_file(given: str, running: str) -> bool:
    try:
        return os.path.samefile(given, running)
    except OSError:
        return Path(given).resolve() == Path(running).resolve()


def running_or_exit(settings: Settings, disabled: str) -> dict[str, Any] | int:
    """The running gateway's summary, or the exit code after saying why there is none."""
    if not settings.admin.enabled:
        print(f"the admin listener is disabled: {disabled}", file=sys.stderr)
        return 2
    running = running_config(settings)
    if isinstance(running, str):
        print(running, file=sys.stderr)
        return 1
    return running


def _cmd_diff(args: argparse.Namespace) -> int:
    settings = load_checked(args.config)
    if settings is None:
        return 1
    running = running_or_exit(settings, "the running config can not be read")
    if isinstance(running, int):
        return running
    new = summarise(settings)
    changes = diff(running, new)
    if args.json:
        doc = {
            "running": {"source": running["source"], "version": running["version"]},
            "file": {"source": new["source"], "version": new["version"]},
            "changes": [c.as_dict() for c in changes],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    print(f"running: {running['source']} (config version {running['version']})")
    print(f"file:    {new['source']} (config version {new['version']})")
    if not same_file(args.config, running["source"]):
        print("note: the gateway runs another file; `reload` loads only the file it runs")
    for line in render_changes(changes) or ["no change to services, grants or backends"]:
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diff", help="what a reload of the file would change: services, grants, backends"
    )
    p.add_argument("-c", "--config", required=True, help="YAML config file (the edited one)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_diff)
