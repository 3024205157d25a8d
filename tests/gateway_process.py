"""The gateway as an operator runs it: ``lc2-gateway serve`` in its own process.

Used by the walkthrough and the dashboard tests: start, wait for ``/ready``
on the admin listener, talk HTTP, stop with SIGTERM and keep what it logged.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["CLI", "GatewayProcess", "http_get"]

ROOT = Path(__file__).resolve().parent.parent
# `lc2-gateway` as installed; the same entry point from a source checkout
CLI = [sys.executable, "-m", "gateway"]


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, so no gateway outlives a killed run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def http_get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


class GatewayProcess:
    """``with GatewayProcess(config, admin_port) as gw:`` serves until the block ends."""

    def __init__(
        self,
        config: Path,
        admin_port: int,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        workers: int = 1,
        *,
        cli: Sequence[str] = CLI,
        cwd: Path = ROOT,
        base_env: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.admin = f"http://127.0.0.1:{admin_port}"
        # with --workers N, worker i's admin listener is on admin_port + i: all must be ready
        self.admins = [f"http://127.0.0.1:{admin_port + i}" for i in range(workers)]
        self.args = (*args, "--workers", str(workers)) if workers > 1 else args
        self.env = {**base_env, **(env or {})}
        self.cli = list(cli)
        self.cwd = cwd
        self.output = ""
        self.returncode: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> GatewayProcess:
        self._proc = subprocess.Popen(
            [*self.cli, "serve", "-c", str(self.config), *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise AssertionError(f"gateway exited {self.returncode}:\n{self.output}")
            try:
                if all(http_get(f"{admin}/ready")[0] == 200 for admin in self.admins):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gateway not ready after 30 s:\n{self.output}")

    def stop(self) -> int:
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        out, _ = self._proc.communicate(timeout=30)
        self.output += out or ""
        self.returncode = self._proc.returncode
        return self.returncode

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            assert self.returncode == 0, self.output

    def logs(self) -> list[dict[str, object]]:
        """The JSON log lines it wrote."""
        return [json.loads(line) for line in self.output.splitlines() if line.startswith("{")]
