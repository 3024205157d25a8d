"""The outcome of ``audit verify`` where Prometheus sees it: a node exporter textfile.

The daily verify runs as its own systemd unit, apart from the gateway, so
its result is a file the node exporter's textfile collector reads; the
alert rules (deploy/prometheus/alerts.yml) fire on a failed or a missing run.
prometheus_client writes the file (atomically, by rename).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

__all__ = ["write_textfile"]


def write_textfile(path: Path, *, exit_code: int) -> None:
    registry = CollectorRegistry()
    Gauge(
        "lc2_gateway_audit_verify_exit_code",
        "Exit code of the last `lc2-gateway audit verify`: 0 intact and sealed, "
        "1 a problem found (or the store could not be read), 3 intact but not all sealed",
        registry=registry,
    ).set(exit_code)
    Gauge(
        "lc2_gateway_audit_verify_last_run_timestamp_seconds",
        "When the last `lc2-gateway audit verify` finished",
        registry=registry,
    ).set(time.time())
    if not path.parent.is_dir():  # the node exporter's directory, never made here
        print(
            f"no directory {path.parent}: the outcome is not written for Prometheus",
            file=sys.stderr,
        )
        return
    write_to_textfile(str(path), registry)
