"""An OpenAPI 3.0.3 description of the services a config declares.

Every service has three operations: its data URL, its sandbox URL and its
health URL, plus the gateway's own ``/health``.  Parameters carry the
schemas the gateway enforces (a citizen ID is 13 digits; its checksum is in
the description, JSON Schema can not say it), the LC2 headers are declared
on every call, the response schema is built from the output mapping (every
field nullable, since a legacy value a transform can not read is served as
null; no field required, since a consumer's field policy may leave some
out), and every error status is described with the error envelope.

Served by the admin listener at ``/openapi.json`` and printed by
``lc2-gateway openapi -c FILE``.  The description is the contract the
fuzzing tests run against.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config.models import FieldConfig, ParamConfig
from gateway.config.runtime import Service, Settings
from gateway.errors import GatewayError, all_error_types
from gateway.transforms import chain_types, check_digit
from gateway.transforms.registry import json_type

__all__ = ["build_openapi", "openapi_handler", "register"]

OPENAPI_VERSION = "3.0.3"
_INT_BOUND = 10**18 - 1  # the gateway reads at most 18 digits
# a valid citizen ID unlikely to belong to anyone, for examples
_SAMPLE_PID = "100000000000" + str(check_digit("100000000000"))
_DATE = "^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8})$"


def _field_schema(cfg: FieldConfig, lookups: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    schema: dict[str, Any]
    if cfg.fields is not None:
        schema = _object_schema(cfg.fields, lookups)
    elif cfg.column is None:  # a constant
        given = json_type(cfg.const)
        scalar = given in ("string", "integer", "number", "boolean")
        schema = {"type": given, "enum": [cfg.const]} if scalar else {}
    else:
        types = sorted(chain_types(cfg.transform, lookups) or ())
        if len(types) > 1:  # a lookup whose descriptions are of several types
            schema = {"anyOf": [{"type": t, "nullable": True} for t in types]}
        else:
            schema = {"type": types[0]} if types else {}
    if "type" in schema:
        schema["nullable"] = True  # a value a transform can not read, or a masked one, is null
    text = " / ".join(t for t in (cfg.description, cfg.description_th) if t)
    if text:
        schema["description"] = text
    return schema


def _object_schema(
    fields: Mapping[str, FieldConfig], lookups: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: _field_schema(cfg, lookups) for name, cfg in fields.items()},
        "additionalProperties": False,
    }


def _param_schema(cfg: ParamConfig) -> dict[str, Any]:
    if cfg.type == "citizen_id":
        return {"type": "string", "pattern": "^[0-9]{13}$"}
    if cfg.type == "integer":
        lo = -_INT_BOUND if cfg.minimum is None else max(cfg.minimum, -_INT_BOUND)
        hi = _INT_BOUND if cfg.maximum is None else min(cfg.maximum, _INT_BOUND)
        return {"type": "integer", "minimum": lo, "maximum": hi}
    if cfg.type == "date":
        return {"type": "string", "pattern": _DATE}
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": max(cfg.min_length, 1),  # an empty value counts as not given
        "maxLength": cfg.max_length,
    }
    if cfg.choices:
        schema["enum"] = list(cfg.choices)
    if cfg.pattern:
        schema["pattern"] = f"^(?:{cfg.pattern})$"
    return schema


def _param_text(cfg: ParamConfig) -> str:
    notes = {
        "citizen_id": "citizen ID: 13 digits with a valid check digit",
        "date": "date YYYY-MM-DD or YYYYMMDD"
        + (", Buddhist Era year" if cfg.era == "be" else ", Common Era year"),
    }
    return "; ".join(t for t in (cfg.description, notes.get(cfg.type, "")) if t)


def _parameters(svc: Service, in_path: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, cfg in svc.config.params.items():
        where = "path" if name in in_path else "query"
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or cfg.required,
            "schema": _param_schema(cfg),
        }
        if text := _param_text(cfg):
            param["description"] = text
        if where == "query" and not cfg.required:
            param["allowEmptyValue"] = True  # `name=` is the same as leaving it out
        if cfg.example is not None:
            param["example"] = cfg.example
        elif cfg.type == "citizen_id":
            param["example"] = _SAMPLE_PID
        out.append(param)
    return out


def _header_refs(settings: Settings, *, sandbox_header: bool) -> list[dict[str, str]]:
    refs = ["Office", "Officer", "RequestId"]
    if settings.lc2.user_agent_prefix:
        refs.append("UserAgent")
    if sandbox_header:
        refs.append("Sandbox")
    return [{"$ref": f"#/components/parameters/{r}"} for r in refs]


def _header_params(settings: Settings) -> dict[str, Any]:
    lc2 = settings.lc2
    params: dict[str, Any] = {
        "Office": {
            "name": lc2.headers.office,
            "in": "header",
            "required": True,
            "description": "code of the office the officer acts for",
            "schema": {"type": "string", "pattern": f"^(?:{lc2.office_re.pattern})$"},
        },
        "Officer": {
            "name": lc2.headers.officer,
            "in": "header",
            "required": True,
            "description": "the officer's citizen ID: 13 digits with a valid check digit",
            "schema": {"type": "string", "pattern": "^[0-9]{13}$"},
        },
        "RequestId": {
            "name": lc2.headers.request_id,
            "in": "header",
            "required": False,
            "description": "the caller's request id, echoed and kept in the audit record; "
            "one that is not 1-64 of A-Z a-z 0-9 . _ : - (or that looks like a citizen ID) "
            "is replaced by one the gateway makes",
            "schema": {"type": "string"},
        },
        "Sandbox": {
            "name": lc2.headers.sandbox,
            "in": "header",
            "required": False,
            "description": "1, true, yes or on: answer from the sandbox rows; any other value: "
            "the data URL's own meaning",
            "schema": {"type": "string"},
        },
    }
    if lc2.user_agent_prefix:
        params["UserAgent"] = {
            "name": "User-Agent",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{re.escape(lc2.user_agent_prefix)}"},
        }
    return params


def _error_schema(settings: Settings) -> dict[str, Any]:
    env = settings.lc2.envelope
    text = {"type": "string"}
    problems = {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    return {
        "type": "object",
        "required": [env.code, env.message, "messageTh", "requestId", "error"],
        "properties": {
            env.code: {"type": "string", "pattern": "^[0-9]{3}$"},
            env.message: text,
            "messageTh": text,
            "requestId": text,
            "error": text,
            "detail": text,
            "missingHeaders": {"type": "array", "items": text},
            "invalidHeaders": problems,
            "invalidParameters": problems,
            "allowed": {"type": "array", "items": text},
            "quota": {"type": "object"},
            "faultCode": text,
            "faultString": text,
        },
    }


_STATUS_TEXT = {
    400: "bad request",
    401: "invalid credentials",
    403: "refused for this caller",
    404: "no such endpoint or record",
    429: "quota exhausted, or locked out after failed sign-ins",
    500: "internal error",
    502: "the backend failed",
    503: "unavailable: backend, audit store or maintenance",
    504: "the backend did not answer in time",
}


def _error_responses(errors: Sequence[type[GatewayError]]) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(err.status, []).append(f"`{err.code}` {err.message_en}")
    out: dict[str, Any] = {}
    for status in sorted(set(_STATUS_TEXT) | set(by_status)):
        if status == 405:  # never for a documented method
            continue
        lines = by_status.get(status, [])
        out[f"Error{status}"] = {
            "description": "; ".join([_STATUS_TEXT.get(status, "error"), *lines]),
            "headers": {
                "X-Request-Id": {"schema": {"type": "string"}},
                "Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}},
            },
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _refs(names: Sequence[str]) -> dict[str, Any]:
    return {n.removeprefix("Error"): {"$ref": f"#/components/responses/{n}"} for n in names}


def _health_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }


def build_openapi(settings: Settings, *, server_url: str | None = None) -> dict[str, Any]:
    """The description of ``settings``' services, as a JSON-ready dict."""
    lc2 = settings.lc2
    env = lc2.envelope
    security_schemes: dict[str, Any] = {
        "basic": {"type": "http", "scheme": "basic", "description": "HTTP Basic, as LC2 sends"}
    }
    security: list[dict[str, list[str]]] = [{"basic": []}]
    if settings.security.api_keys_in_use:
        security_schemes["apiKey"] = {
            "type": "apiKey",
            "in": "header",
            "name": settings.security.api_key_header,
        }
        security = [{"basic": []}, {"apiKey": []}, {"basic": [], "apiKey": []}]
    error_responses = _error_responses(all_error_types())
    call_errors = list(error_responses)
    schemas: dict[str, Any] = {"Error": _error_schema(settings), "Health": _health_schema()}
    paths: dict[str, Any] = {}
    for name, svc in sorted(settings.services.items()):
        in_path = set(re.findall(r"\{([A-Za-z][A-Za-z0-9_]*)\}", svc.data_path))
        params = _parameters(svc, in_path)
        row = f"{_schema_name(name)}Row"
        schemas[row] = _object_schema(svc.config.output, settings.lookups)
        schemas[f"{_schema_name(name)}Answer"] = {
            "type": "object",
            "required": [env.code, env.message, env.data],
            "properties": {
                env.code: {"type": "string", "enum": [env.success_code]},
                env.message: {"type": "string"},
                env.data: {"type": "array", "items": {"$ref": f"#/components/schemas/{row}"}},
            },
            "additionalProperties": False,
        }
        summary = (
            " / ".join(t for t in (svc.config.description, svc.config.description_th) if t) or name
        )
        ok = {
            "description": "the records found (none found: an empty list)",
            "headers": {"X-Request-Id": {"required": True, "schema": {"type": "string"}}},
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{_schema_name(name)}Answer"}
                }
            },
        }
        for path, kind, text in (
            (svc.data_path, "data", summary),
            (svc.sandbox_path, "sandbox", f"{summary} (sandbox: test rows, no backend)"),
        ):
            paths[path] = {
                "get": {
                    "operationId": f"{name}_{kind}",
                    "tags": [name],
                    "summary": text,
                    "security": security,
                    "parameters": [
                        *_header_refs(settings, sandbox_header=kind == "data"),
                        *params,
                    ],
                    "responses": {"200": ok, **_refs(call_errors)},
                }
            }
        health_op: dict[str, Any] = {
            "operationId": f"{name}_health",
            "tags": [name],
            "summary": f"health of the backend behind {name}",
            "responses": {
                "200": _health_response("the backend is up"),
                "503": _health_response("the backend is down, or maintenance"),
                **_refs(["Error403", "Error404", "Error500"]),
            },
        }
        if lc2.health_requires_auth:
            health_op["security"] = security
            health_op["parameters"] = _header_refs(settings, sandbox_header=False)
            health_op["responses"].update(_refs(["Error400", "Error401", "Error429"]))
        else:
            health_op["security"] = []
        if in_path:  # the health URL has the service's shape; its values are not read
            health_op.setdefault("parameters", []).extend(
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in sorted(in_path)
            )
        paths[svc.health_path] = {"get": health_op}
    paths["/health"] = {
        "get": {
            "operationId": "gateway_health",
            "tags": ["gateway"],
            "summary": "the gateway: every backend and the audit store",
            "security": [],
            "responses": {
                "200": _health_response("up or degraded"),
                "503": _health_response("down, or maintenance"),
                **_refs(["Error403", "Error500"]),
            },
        }
    }
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "LC2 data provider APIs",
            "version": settings.version or "0",
            "description": "Services this gateway provides to DOPA's Linkage Center 2 (LC2). "
            "Every call is audited; errors carry a stable responseCode and a requestId.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": security_schemes,
            "parameters": _header_params(settings),
            "schemas": schemas,
            "responses": error_responses,
        },
        "security": security,
    }
    if server_url:
        doc["servers"] = [{"url": server_url.rstrip("/")}]
    return doc


def _health_response(text: str) -> dict[str, Any]:
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
    }


def _schema_name(service: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", service) if p)


def openapi_handler(
    settings: Callable[[], Settings],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``GET /openapi.json`` for the admin app: the running config's description."""
    cache: dict[str, bytes] = {}

    async def handler(_: web.Request) -> web.StreamResponse:
        current = settings()
        body = cache.get(current.version)
        if body is None:
            body = json.dumps(build_openapi(current), ensure_ascii=False).encode()
            cache.clear()
            cache[current.version] = body
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    return handler


def _cmd_openapi(args: argparse.Namespace) -> int:
    from gateway.config.build import load_settings
    from gateway.config.loader import ConfigError

    try:
        settings = load_settings(Path(args.config), create_key_file=False)
    except ConfigError as exc:
        for p in exc.problems:
            print(p.render(exc.source), file=sys.stderr)
        return 1
    text = json.dumps(build_openapi(settings, server_url=args.server), ensure_ascii=False, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def register(sub: Any) -> None:
    """Add ``openapi`` to the CLI's subcommands."""
    p = sub.add_parser("openapi", help="print the OpenAPI 3 description of a config's services")
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--server", help="base URL of the LC2 listener, for `servers`")
    p.set_defaults(func=_cmd_openapi)
