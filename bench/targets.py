"""Starting what is measured: the gateway, the floor and the ceiling (nginx).

A gateway can run from the checkout or from a *source tree*: a temporary
copy of ``gateway/`` and ``adapters/`` with patches applied, so a proposed
change is measured against the unchanged code in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.procs import Proc, Supervisor, free_port, wait_http
from bench.workload import AUDIT_KEY_ENV

__all__ = [
    "REPO",
    "Instance",
    "build_tree",
    "export_ref",
    "gateway_env",
    "nginx_conf",
    "start_floor",
    "start_gateway",
    "start_nginx",
    "supports_workers",
]

REPO = Path(__file__).resolve().parent.parent
AUDIT_KEY = "lc2-bench-audit-key-0123456789abcdef"


@dataclass
class Instance:
    """One running target: where it listens and its processes."""

    name: str
    kind: str  # floor | peer | gateway | ceiling
    port: int
    proc: Proc
    admin_port: int | None = None
    ready_seconds: float = 0.0


def gateway_env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env[AUDIT_KEY_ENV] = AUDIT_KEY
    return env


def export_ref(ref: str, into: Path) -> Path:
    """gateway/ and adapters/ as committed at ``ref`` (by ``git archive``: read only)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "gateway", "adapters"],
        cwd=REPO, capture_output=True, check=False,
    )
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {ref}: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def build_tree(patches: Sequence[Path], into: Path, base: Path = REPO) -> Path:
    """A copy of ``base``'s gateway/ and adapters/ with ``patches`` applied (``patch -p1``)."""
    into.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("gateway", "adapters"):
        shutil.copytree(base / pkg, into / pkg, ignore=ignore)
    for shared in base.glob("*__mypyc.*.so"):  # a tree compiled in place (LC2_COMPILE=1)
        shutil.copy2(shared, into / shared.name)
    for patch in patches:
        out = subprocess.run(
            ["patch", "-p1", "--forward", "--batch", "-d", str(into), "-i", str(patch.resolve())],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{patch} does not apply here:\n{out.stdout}{out.stderr}")
    return into


def _probe(src: Path, code: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", code], env=gateway_env(src), cwd=src, capture_output=True,
        check=False,
    )
    return out.returncode == 0


def supports_workers(src: Path) -> bool:
    return _probe(
        src,
        "import sys, contextlib, io; from gateway.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
        "    main(['serve', '--help'])\n"
        "sys.exit(0 if '--workers' in buf.getvalue() else 1)",
    )


def write_config(path: Path, cfg: Mapping[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(dict(cfg), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return path


def start_gateway(
    sup: Supervisor,
    name: str,
    *,
    src: Path,
    config: Path,
    port: int,
    admin_port: int,
    workers: int = 1,
    timeout: float = 60.0,
    audit: bool = True,
) -> Instance:
    # without its audit: the same gateway through a launcher that idles the writer
    launcher = ["-m", "gateway"] if audit else [str(REPO / "bench" / "noaudit.py")]
    argv = [sys.executable, *launcher, "serve", "-c", str(config)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = sup.start(name, argv, env=gateway_env(src), cwd=src)
    ready = 0.0
    for i in range(workers):  # worker i has its admin listener on admin.port + i
        ready = max(ready, wait_http(proc, admin_port + i, "/ready", timeout=timeout))
    return Instance(name, "gateway", port, proc, admin_port, ready)


def start_floor(
    sup: Supervisor,
    name: str,
    *,
    pg_dsn: str,
    sqlite_path: Path,
    pool_size: int,
    processes: int = 1,
    kind: str = "floor",
) -> Instance:
    """The floor (bench/floor.py) or, with ``kind="peer"``, the hand-written provider
    (bench/peer.py): the same command line, one process per ``processes``."""
    port = free_port()
    argv = [
        sys.executable, "-m", f"bench.{kind}", "--port", str(port), "--pg", pg_dsn,
        "--pool", str(pool_size), "--sqlite", str(sqlite_path),
    ]
    if processes > 1:
        argv.append("--reuse-port")
    proc = sup.start(name, argv, env=gateway_env(REPO), cwd=REPO, count=processes)
    ready = wait_http(proc, port, "/health")
    return Instance(name, kind, port, proc, None, ready)


def nginx_conf(prefix: Path, static: Path, port: int, workers: int) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    types {{ application/json json; }}
    default_type application/json;
    charset utf-8;
    charset_types application/json;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
{temps}
    server {{
        listen 127.0.0.1:{port}{" reuseport" if workers > 1 else ""};
        root {static};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def start_nginx(
    sup: Supervisor, name: str, *, workdir: Path, static: Path, workers: int
) -> Instance:
    nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
    if nginx is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    prefix = workdir / name
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, static, port, workers), encoding="utf-8")
    (static / "ready.json").write_text('{"ready":true}', encoding="utf-8")
    argv = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
            "-g", "daemon off;"]
    proc = sup.start(name, argv)
    ready = wait_http(proc, port, "/ready.json")
    return Instance(name, "ceiling", port, proc, None, ready)
