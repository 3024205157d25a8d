"""``lc2-gateway`` command line.

Exit codes: 0 success; 1 the config, the input or the running gateway said
no; 2 usage error (argparse) or a setting the command needs is missing;
3 ``serve`` could not start: a port in use or a permission missing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn

from gateway.auth import hash_password
from gateway.config.build import load_settings
from gateway.config.loader import ConfigError
from gateway.config.models import SCHEMA_VERSION
from gateway.config.runtime import Settings

__all__ = ["apply_overrides", "main"]

_OWN = frozenset({"serve", "check", "reload", "maintenance", "passwd"})  # defined in this module


def apply_overrides(settings: Settings, port: int | None) -> Settings:
    if port is None:
        return settings
    return replace(settings, listen=settings.listen.model_copy(update={"port": port}))


def _load(path: str, *, create_key_file: bool = True) -> Settings | None:
    try:
        return load_settings(Path(path), create_key_file=create_key_file)
    except ConfigError as exc:
        print(f"lc2-gateway: invalid config {path}", file=sys.stderr)
        for p in exc.problems:
            print("  " + p.render(exc.source), file=sys.stderr)
        return None


def _cmd_serve(args: argparse.Namespace) -> int:
    from gateway.logs import setup_logging

    settings = _load(args.config)
    if settings is None:
        return 1
    settings = apply_overrides(settings, args.port)
    if args.workers > 1:
        from gateway.workers import run_workers

        listener = setup_logging(settings.logging.level)
        try:
            return run_workers(
                Path(args.config), args.workers, args.port, settings.shutdown_timeout
            )
        finally:
            listener.stop()
    from gateway.server import ListenError, run

    listener = setup_logging(settings.logging.level)
    try:
        run(settings)
    except ListenError as exc:
        return _cannot_start(str(exc))
    except PermissionError as exc:
        return _cannot_start(f"permission denied: {exc.filename or exc}")
    finally:
        listener.stop()
    return 0


def _cannot_start(message: str) -> int:
    print(f"lc2-gateway: {message}", file=sys.stderr)
    return 3


def _cmd_check(args: argparse.Namespace) -> int:
    from gateway.check import run_check

    return run_check(args.config, connect=args.connect, as_json=args.json)


def _cmd_passwd(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    if len(password) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _cmd_reload(args: argparse.Namespace) -> int:
    """Check the file here first, then ask the running gateway to load it."""
    settings = _load(args.config, create_key_file=False)
    if settings is None:
        return 1
    from gateway.diff import admin_url, running_or_exit, same_file

    # the gateway reloads the file it was started with: a check of another file proves nothing
    running = running_or_exit(settings, "send SIGHUP to the process instead")
    if isinstance(running, int):
        return running
    if not same_file(args.config, running["source"]):
        print(
            f"refused: the gateway runs {running['source']}, not {args.config}; "
            "edit that file (see `lc2-gateway diff -c FILE`) and reload it",
            file=sys.stderr,
        )
        return 1
    url = admin_url(settings, "/-/reload")
    from gateway.security.admin import read_token, token_path

    try:  # the running gateway's reload token: readable by its service user only
        auth = {"Authorization": f"Bearer {read_token(token_path(settings.quotas.store))}"}
    except OSError as err:
        print(f"cannot read the admin token (run as the service user): {err}", file=sys.stderr)
        return 1
    request = urllib.request.Request(url, method="POST", headers=auth)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read() or b"{}")
    except (urllib.error.URLError, OSError) as err:
        print(f"no gateway answering at {url}: {err}", file=sys.stderr)
        return 1
    print(body.get("message", body))
    return 0 if body.get("reloaded") else 1


def _cmd_maintenance(args: argparse.Namespace) -> int:
    from gateway.maintenance import read_message

    settings = _load(args.config, create_key_file=False)
    if settings is None:
        return 1
    if settings.state.postgresql is not None and not args.local:
        # a fleet: the switch in the shared store switches every gateway
        import asyncio

        from gateway.sharedstate import shared_maintenance

        try:
            message = asyncio.run(
                shared_maintenance(settings.state.postgresql, args.state, args.message)
            )
        except Exception as exc:
            print(f"shared state store: {exc}", file=sys.stderr)
            return 1
        print(f"maintenance: on ({message})" if message else "maintenance: off")
        return 0
    path = settings.maintenance_file
    if path is None:
        print("set maintenance.file in the config to use maintenance mode", file=sys.stderr)
        return 2
    if args.state == "on":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((args.message or "under maintenance") + "\n", encoding="utf-8")
    elif args.state == "off":
        path.unlink(missing_ok=True)
    message = read_message(path)
    print(f"maintenance: on ({message})" if message else "maintenance: off")
    return 0


def _register_others(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands of other modules (routes, audit, report, describe, openapi, scaffold,
    profile, diff); serving
    needs none of those modules, so they are imported only for a command line that may
    name one of them (or asks for help)."""
    from gateway.audit.cli import register as register_audit
    from gateway.describe import register as register_describe
    from gateway.describe.routes import register as register_routes
    from gateway.diff import register as register_diff
    from gateway.openapi import register as register_openapi
    from gateway.profile import register as register_profile
    from gateway.scaffold import register as register_scaffold

    register_routes(sub)
    register_audit(sub)
    register_describe(sub)
    register_openapi(sub)
    register_scaffold(sub)
    register_profile(sub)
    register_diff(sub)


class _Parser(argparse.ArgumentParser):
    """Names every subcommand in its usage, also when only some were registered."""

    complete: Callable[[], None] | None = None

    def error(self, message: str) -> NoReturn:
        complete, self.complete = self.complete, None
        if complete is not None:
            complete()
        super().error(message)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="lc2-gateway",
        description="Serve legacy systems as DOPA Linkage Center 2 (LC2) data providers.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {version('lc2-gateway')} (config schema {SCHEMA_VERSION})",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("--port", type=int, help="override listen.port")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (admin ports: admin.port + index)",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "check", help="validate a config; print every problem with its line (on stderr)"
    )
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument(
        "--connect",
        action="store_true",
        help="also open and probe every backend and compare each service's output columns "
        "with what its query or WSDL returns (exit 1 if anything fails)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("reload", help="validate a config, then make the running gateway load it")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.set_defaults(func=_cmd_reload)

    p = sub.add_parser(
        "maintenance",
        help="switch maintenance mode on or off (maintenance.file, or the shared state store)",
    )
    p.add_argument("state", choices=["on", "off", "status"])
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("-m", "--message", help="text shown to callers while on")
    p.add_argument(
        "--local",
        action="store_true",
        help="this server only (maintenance.file), when the switch is shared by a fleet",
    )
    p.set_defaults(func=_cmd_maintenance)

    words = sys.argv[1:] if argv is None else argv
    if not words or words[0] not in _OWN:
        _register_others(sub)
    else:  # a usage error still lists them all
        parser.complete = lambda: _register_others(sub)

    p = sub.add_parser("passwd", help="hash a consumer password for password_hash")
    p.add_argument("--stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_cmd_passwd)

    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
