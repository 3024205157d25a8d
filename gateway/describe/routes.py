"""``lc2-gateway routes``: every URL a config exposes, on both listeners.

What a firewall rule, a reverse proxy or LC2's registration form needs: for
each URL the method, path, kind, service and backend, read from the same
settings the router is built from.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.config.build import load_settings
from gateway.config.loader import ConfigError
from gateway.config.runtime import Settings

__all__ = ["Route", "register", "routes_of"]


@dataclass(frozen=True, slots=True)
class Route:
    listener: str  # "lc2" | "admin"
    method: str
    path: str
    kind: str
    service: str
    backend: str


# The admin application's routes (gateway/app.py, build_admin_app).
_ADMIN = (
    ("GET", "/metrics", "metrics"),
    ("GET", "/live", "liveness"),
    ("GET", "/ready", "readiness"),
    ("GET", "/health", "gateway-health"),
    ("GET", "/status", "status-page"),
    ("GET", "/openapi.json", "openapi"),
    ("GET", "/openapi.json", "openapi"),
    ("GET", "/-/config", "running-config"),
    ("POST", "/-/reload", "reload"),
)


def routes_of(settings: Settings) -> list[Route]:
    out = [Route("lc2", "GET", "/health", "gateway-health", "-", "-")]
    for name, svc in sorted(settings.services.items()):
        for path, kind in (
            (svc.data_path, "data"),
            (svc.sandbox_path, "sandbox"),
            (svc.health_path, "health"),
        ):
            out.append(Route("lc2", "GET", path, kind, name, svc.backend))
    if settings.admin.enabled:
        out.extend(Route("admin", m, p, k, "-", "-") for m, p, k in _ADMIN)
    return out


def _cmd_routes(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.config), create_key_file=False)
    except ConfigError as exc:
        for p in exc.problems:
            print(p.render(exc.source), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    routes = routes_of(settings)
    if args.format == "json":
        print(json.dumps([asdict(r) for r in routes], indent=2))
        return 0
    listen = f"{settings.listen.host}:{settings.listen.port}"
    admin = f"{settings.admin.host}:{settings.admin.port}"
    header = ("METHOD", "PATH", "KIND", "SERVICE", "BACKEND")
    for listener, title in (
        ("lc2", f"LC2 listener {listen}"),
        ("admin", f"admin listener {admin}"),
    ):
        rows = [
            (r.method, r.path, r.kind, r.service, r.backend)
            for r in routes
            if r.listener == listener
        ]
        if not rows:
            continue
        print(f"# {title}")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "routes",
        help="list every URL the config exposes (method, path, kind, service, backend)",
        description="List every URL the config exposes, on the LC2 and the admin listener. "
        "HEAD is accepted wherever GET is. Exit 1 if the config is invalid.",
    )
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=_cmd_routes)
