"""The LC2 registration pack as data: what each service takes, returns and means.

Built from a config file that passes ``check``: the frozen settings give the
URLs, the compiled parameters, the mapping and the sandbox rows; the YAML
models give what the settings do not keep (parameter rules, transform
arguments, field descriptions).  The sample response is the service's sandbox
rows filtered, mapped and enveloped by the gateway's own code, so it is what
LC2 gets from the sandbox URL for the sample request, byte for byte in content.
Renderers (:mod:`gateway.describe.text`, :mod:`gateway.describe.sheet`) only
lay this out.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from multidict import MultiDict

from gateway.auth import Consumer
from gateway.config.build import build_settings
from gateway.config.loader import load_yaml
from gateway.config.models import GatewayConfig, ParamConfig
from gateway.config.runtime import Service, Settings
from gateway.describe.dictionary import meaning_of
from gateway.describe.fields import TYPE_TH, FieldDoc, field_docs
from gateway.errors import GatewayError, all_error_types
from gateway.params import compile_param
from gateway.request import parse_params
from gateway.respond import success_response
from gateway.sandbox import sandbox_filter
from gateway.transforms import check_digit

__all__ = [
    "API_KEY_VARIABLE",
    "PASSWORD_VARIABLE",
    "SAMPLE_OFFICE",
    "SAMPLE_OFFICER",
    "SAMPLE_SUBJECT",
    "TYPE_TH",
    "ErrorDoc",
    "FieldDoc",
    "Pack",
    "ParamDoc",
    "ServiceDoc",
    "build_pack",
    "default_base_url",
    "load_pack",
]

# Values that are obviously for testing: a valid citizen ID nobody is likely to hold.
SAMPLE_SUBJECT = "100000000000" + str(check_digit("100000000000"))
SAMPLE_OFFICER = "1101700203450"  # the officer the demo and README use
SAMPLE_OFFICE = "00023"
PASSWORD_VARIABLE = "LC2_PASSWORD"
API_KEY_VARIABLE = "LC2_API_KEY"
_LC2_AGENT = "Linkage Center 2/1.0"


@dataclass(frozen=True, slots=True)
class ParamDoc:
    name: str
    location: str  # "query" | "path"
    type: str  # citizen_id | string | integer | date
    required: bool
    rules_en: str
    rules_th: str
    example: str | None
    description_en: str
    description_th: str


@dataclass(frozen=True, slots=True)
class ServiceDoc:
    name: str
    description_en: str
    description_th: str
    data_url: str
    sandbox_url: str
    health_url: str
    max_rows: int | None
    usernames: tuple[str, ...]
    params: tuple[ParamDoc, ...]
    fields: tuple[FieldDoc, ...]
    sample_url: str | None
    sample_curl: str | None
    sample_response: str | None  # pretty JSON
    sample_rows: int


@dataclass(frozen=True, slots=True)
class ErrorDoc:
    code: str
    status: int
    message_en: str
    message_th: str


@dataclass(frozen=True, slots=True)
class Pack:
    source: str
    version: str
    generated: dt.date
    base_url: str
    office_header: str
    officer_header: str
    sandbox_header: str
    request_id_header: str
    user_agent_prefix: str | None
    api_key_header: str | None  # when some consumer signs in with an API key
    envelope: Mapping[str, str]
    services: tuple[ServiceDoc, ...]
    errors: tuple[ErrorDoc, ...]
    warnings: tuple[str, ...] = field(default=())


# --- parameters -------------------------------------------------------------------


def _rules(p: ParamConfig) -> tuple[str, str]:
    if p.type == "citizen_id":
        form = " (sent to the backend dashed)" if p.bind == "dashed" else ""
        return (
            f"13 digits with a valid check digit{form}",
            "ตัวเลข 13 หลัก หลักสุดท้ายเป็นหลักตรวจสอบที่ถูกต้อง",
        )
    if p.type == "integer":
        en, th = ["integer"], ["จำนวนเต็ม"]
        if p.minimum is not None:
            en.append(f">= {p.minimum}")
            th.append(f"ไม่น้อยกว่า {p.minimum}")
        if p.maximum is not None:
            en.append(f"<= {p.maximum}")
            th.append(f"ไม่เกิน {p.maximum}")
        return ", ".join(en), " ".join(th)
    if p.type == "date":
        era_en, era_th = ("Buddhist Era (BE)", "พ.ศ.") if p.era == "be" else ("CE", "ค.ศ.")
        return (
            f"date YYYY-MM-DD or YYYYMMDD, year in {era_en}",
            f"วันที่ รูปแบบ YYYY-MM-DD หรือ YYYYMMDD ปี {era_th}",
        )
    en = [f"{p.min_length}-{p.max_length} characters"]
    th = [f"ยาว {p.min_length}-{p.max_length} ตัวอักษร"]
    if p.choices:
        en.append("one of: " + ", ".join(p.choices))
        th.append("ค่าใดค่าหนึ่งใน: " + ", ".join(p.choices))
    if p.pattern:
        en.append(f"matches the regular expression {p.pattern}")
        th.append(f"ตรงตามรูปแบบ (regular expression) {p.pattern}")
    return "; ".join(en), "; ".join(th)


def _candidates(name: str, p: ParamConfig, svc: Service) -> Iterable[str]:
    """Example values to try, best first; the parameter's own parser decides."""
    if p.example is not None:
        yield p.example
    column = svc.sandbox_match.get(name)
    if column is not None:  # a value the sandbox answers with a row
        for row in svc.sandbox_rows:
            if row.get(column) is not None:
                value = str(row[column]).strip()
                digits = "".join(ch for ch in value if ch.isdigit())
                yield digits if p.type == "citizen_id" else value
    if p.type == "citizen_id":
        yield SAMPLE_SUBJECT
    elif p.type == "integer":
        if p.minimum is not None:
            yield str(p.minimum)
        yield str(p.maximum if p.maximum is not None and p.maximum < 1 else 1)
    elif p.type == "date":
        yield "2567-01-15" if p.era == "be" else "2024-01-15"
    else:
        if p.choices:
            yield p.choices[0]
        yield ("TEST" * (p.min_length // 4 + 1))[: max(p.min_length, min(4, p.max_length))]


def _example(name: str, p: ParamConfig, svc: Service, warn: list[str]) -> str | None:
    parse = compile_param(name, p).parse
    for value in _candidates(name, p, svc):
        try:
            parse(value)
        except ValueError as exc:
            if value == p.example:
                warn.append(
                    f"services.{svc.name}.params.{name}.example {value!r} is refused: {exc}"
                )
            continue
        return value
    return None


# --- samples ----------------------------------------------------------------------


def _curl(url: str, consumer: Consumer | None, settings: Settings) -> str:
    """LC2's call as curl, its secrets as shell variables: it runs as printed once they are set."""
    lc2 = settings.lc2
    agent = f"{lc2.user_agent_prefix}1.0" if lc2.user_agent_prefix else _LC2_AGENT
    lines = ["curl -sS"]
    if consumer is None or consumer.password_hashes:
        user = consumer.username if consumer is not None else "USERNAME"
        for ch in '\\"$`':
            user = user.replace(ch, "\\" + ch)
        lines[0] += f' -u "{user}:${PASSWORD_VARIABLE}"'
    if consumer is not None and consumer.api_key_hashes:
        lines.append(f'-H "{settings.security.api_key_header}: ${API_KEY_VARIABLE}"')
    lines += [
        f"-H {shlex.quote(f'{lc2.headers.office}: {SAMPLE_OFFICE}')}",
        f"-H {shlex.quote(f'{lc2.headers.officer}: {SAMPLE_OFFICER}')}",
        f"-H {shlex.quote(f'User-Agent: {agent}')}",
        shlex.quote(url),
    ]
    return " \\\n     ".join(lines)


def _sample(
    svc: Service, settings: Settings, base_url: str, examples: Mapping[str, str | None]
) -> tuple[str, list[dict[str, Any]], str] | None:
    """(URL, mapped rows, pretty body) of the sample sandbox call, or None without examples."""
    path_values: dict[str, str] = {}
    query: MultiDict[str] = MultiDict()
    for spec in svc.params:
        value = examples.get(spec.name)
        if value is None:
            if spec.required:
                return None
            continue
        if "{" + spec.name + "}" in svc.sandbox_path:
            path_values[spec.name] = value
        else:
            query.add(spec.name, value)
    try:
        params = parse_params(svc, settings.lc2, query, path_values)
    except GatewayError:
        return None
    rows = sandbox_filter(svc.sandbox_rows, svc.sandbox_match, params)
    mapped = svc.mapper.map_rows(rows)
    body = success_response(settings.lc2, mapped.rows, {}).body
    assert isinstance(body, bytes)
    pretty = json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    path = svc.sandbox_path
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    url = base_url + path + (("?" + urlencode(list(query.items()))) if query else "")
    return url, mapped.rows, pretty


# --- the pack ---------------------------------------------------------------------


def default_base_url(settings: Settings) -> str:
    host = settings.listen.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.listen.port}"


def build_pack(
    settings: Settings,
    cfg: GatewayConfig,
    *,
    base_url: str | None = None,
    services: Sequence[str] = (),
    today: dt.date | None = None,
) -> Pack:
    """The pack for ``services`` (all when empty); unknown names raise KeyError."""
    warn: list[str] = []
    if base_url is None:
        base_url = default_base_url(settings)
        warn.append(
            f"base URL {base_url} is derived from listen:; "
            "give --base-url with the address LC2 calls (https://...)"
        )
    elif not base_url.startswith("https://"):
        warn.append(f"base URL {base_url} is not https: LC2 production calls should use TLS")
    base_url = base_url.rstrip("/")
    names = list(services) or sorted(settings.services)
    for name in names:
        if name not in settings.services:
            raise KeyError(name)
    docs = [_service_doc(settings, cfg, name, base_url, warn) for name in names]
    lc2 = settings.lc2
    env = lc2.envelope
    return Pack(
        source=settings.source,
        version=settings.version,
        generated=today or dt.datetime.now(ZoneInfo(settings.quotas.timezone)).date(),
        base_url=base_url,
        office_header=lc2.headers.office,
        officer_header=lc2.headers.officer,
        sandbox_header=lc2.headers.sandbox,
        request_id_header=lc2.headers.request_id,
        user_agent_prefix=lc2.user_agent_prefix,
        api_key_header=(
            settings.security.api_key_header if settings.security.api_keys_in_use else None
        ),
        envelope={
            "code": env.code,
            "message": env.message,
            "data": env.data,
            "success_code": env.success_code,
            "success_message": env.success_message,
        },
        services=tuple(docs),
        errors=tuple(
            ErrorDoc(e.code, e.status, e.message_en, e.message_th) for e in all_error_types()
        ),
        warnings=tuple(warn),
    )


def _service_doc(
    settings: Settings, cfg: GatewayConfig, name: str, base_url: str, warn: list[str]
) -> ServiceDoc:
    svc, sc = settings.services[name], cfg.services[name]
    where = f"services.{name}"
    if not (sc.description and sc.description_th):
        warn.append(f"{where}: add description and description_th (the purpose LC2 shows)")
    params: list[ParamDoc] = []
    examples: dict[str, str | None] = {}
    for pname, pc in sc.params.items():
        example = _example(pname, pc, svc, warn)
        examples[pname] = example
        if example is None and pc.required:
            warn.append(f"{where}.params.{pname}: no valid example; add example: in the YAML")
        known = meaning_of(pname)
        rules_en, rules_th = _rules(pc)
        params.append(
            ParamDoc(
                name=pname,
                location="path" if "{" + pname + "}" in svc.data_path else "query",
                type=pc.type,
                required=pc.required,
                rules_en=rules_en,
                rules_th=rules_th,
                example=example,
                description_en=pc.description or (known.en if known else ""),
                description_th=known.th if known else "",
            )
        )
    sample = _sample(svc, settings, base_url, examples)
    rows: list[dict[str, Any]] = sample[1] if sample else []
    if sample is not None and not rows:
        warn.append(f"{where}: the sample request matches no sandbox row; set params examples")
    granted = sorted(
        (c for c in settings.consumers.values() if c.may_call(name)), key=lambda c: c.username
    )
    usernames = tuple(c.username for c in granted)
    if not usernames:
        warn.append(f"{where}: no consumer is granted this service")
    max_rows = getattr(svc.operation, "max_rows", None)
    return ServiceDoc(
        name=name,
        description_en=sc.description,
        description_th=sc.description_th,
        data_url=base_url + svc.data_path,
        sandbox_url=base_url + svc.sandbox_path,
        health_url=base_url + svc.health_path,
        max_rows=max_rows if isinstance(max_rows, int) else None,
        usernames=usernames,
        params=tuple(params),
        fields=tuple(field_docs(sc.output, cfg.lookups, rows, where, warn)),
        sample_url=sample[0] if sample else None,
        sample_curl=_curl(sample[0], granted[0] if granted else None, settings) if sample else None,
        sample_response=sample[2] if sample else None,
        sample_rows=len(rows),
    )


def load_pack(
    path: Path,
    *,
    base_url: str | None = None,
    services: Sequence[str] = (),
    today: dt.date | None = None,
) -> Pack:
    """Validate ``path`` as ``check`` does (ConfigError on any problem), then build the pack."""
    loaded = load_yaml(path)
    settings = build_settings(loaded, create_key_file=False)
    cfg = GatewayConfig.model_validate(loaded.data)
    return build_pack(settings, cfg, base_url=base_url, services=services, today=today)
