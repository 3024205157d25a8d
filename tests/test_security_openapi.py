"""The OpenAPI description: what it says, that the CLI and the admin listener agree, and that a
live gateway keeps to it under schemathesis (no 5xx, no answer outside the description)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.cli import main as cli_main
from gateway.errors import all_error_types
from gateway.openapi import build_openapi
from gateway.security.apikey import hash_api_key
from tests.live import live_config, live_gateway
from tests.support import OFFICE, OFFICER, PASSWORD, TEST_ENV, settings_from


def _config(tmp_path: Path) -> dict[str, Any]:
    search = {
        "backend": "legacy",
        "path": "search",
        "description": "Registrations by tonnage and date",
        "description_th": "ค้นหาทะเบียน",
        "params": {
            "tonnage": {"type": "integer", "minimum": 1, "maximum": 5000},
            "since": {"type": "date", "era": "be", "required": False},
            "kind": {"type": "string", "choices": ["A", "C"], "required": False},
            "code": {"type": "string", "pattern": "[A-Z]{2}[0-9]{3}", "required": False},
        },
        "operation": {
            "query": "SELECT PID, FULLNAME, SEX, BIRTH_DATE, MOO FROM FISHER_REG "
            "WHERE :tonnage > 0 AND (:since IS NULL OR BIRTH_DATE >= :since) "
            "AND (:kind IS NULL OR SEX = :kind) AND (:code IS NULL OR MOO = :code)"
        },
        "output": {
            "personalId": {"column": "PID", "transform": ["pid"], "description": "owner"},
            "born": {"column": "BIRTH_DATE", "transform": [{"be_date": {"output": "be_int"}}]},
            "moo": {"column": "MOO", "transform": ["trim", {"null_if": ["0"]}, "int"]},
            "registered": {"const": True},
            "raw": "SEX",
        },
    }
    cfg = live_config(tmp_path, services={"search": search})
    cfg["lc2"] = {"user_agent_prefix": "Linkage Center 2/"}
    cfg["consumers"]["partner"] = {"username": "partner", "api_keys": [hash_api_key("k" * 43)]}
    # schemathesis sends many bad credentials on purpose: no lock-out in its way
    cfg["security"] = {"auth_failures": {"per_address": 100_000, "per_username": 100_000}}
    return cfg


def test_the_description_covers_every_service_parameter_field_and_error(tmp_path: Path) -> None:
    settings = settings_from(_config(tmp_path))
    doc = build_openapi(settings, server_url="https://lc2.example.go.th/")
    assert doc["openapi"] == "3.0.3" and doc["servers"] == [{"url": "https://lc2.example.go.th"}]
    paths = doc["paths"]
    for svc in settings.services.values():
        assert {svc.data_path, svc.sandbox_path, svc.health_path} <= paths.keys()
    assert "/health" in paths

    fisher = paths["/api/v1/fisher"]["get"]
    params = {p.get("name") or p["$ref"].rsplit("/", 1)[1]: p for p in fisher["parameters"]}
    pid = params["personalId"]
    assert pid["in"] == "query" and pid["required"] and pid["schema"]["pattern"] == "^[0-9]{13}$"
    assert "check digit" in pid["description"]
    assert {"Office", "Officer", "RequestId", "Sandbox", "UserAgent"} <= params.keys()
    headers = doc["components"]["parameters"]
    assert headers["Officer"]["name"] == "X-User-Request" and headers["Officer"]["required"]
    assert headers["Office"]["schema"]["pattern"] == "^(?:[0-9]{3,10})$"
    assert headers["UserAgent"]["schema"]["pattern"] == "^Linkage\\ Center\\ 2/"
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"

    search = {p["name"]: p for p in paths["/api/v1/search"]["get"]["parameters"] if "name" in p}
    assert search["tonnage"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 5000}
    assert search["since"]["required"] is False and "Buddhist Era" in search["since"]["description"]
    assert search["kind"]["schema"]["enum"] == ["A", "C"]
    assert search["code"]["schema"]["pattern"] == "^(?:[A-Z]{2}[0-9]{3})$"
    vessel = paths["/api/v1/vessel/{name}"]["get"]["parameters"]
    name = next(p for p in vessel if p.get("name") == "name")
    assert name["in"] == "path" and name["required"] is True

    # the response schema is the output mapping
    schemas = doc["components"]["schemas"]
    row = schemas["SearchRow"]
    assert row["additionalProperties"] is False and "required" not in row
    props = row["properties"]
    assert props["personalId"] == {"type": "string", "nullable": True, "description": "owner"}
    assert props["born"]["type"] == "integer" and props["moo"]["type"] == "integer"
    assert props["registered"]["enum"] == [True] and props["raw"] == {}
    fisher_row = schemas["FisherRow"]["properties"]
    assert fisher_row["address"]["type"] == "object"
    assert fisher_row["address"]["properties"]["villageNo"]["type"] == "integer"
    assert schemas["FisherAnswer"]["properties"]["responseCode"]["enum"] == ["000"]

    # every error status a call can get, each with the envelope, each code named
    responses = fisher["responses"]
    statuses = {e.status for e in all_error_types()} - {405}
    assert statuses <= {int(s) for s in responses if s != "200"}
    text = json.dumps(doc["components"]["responses"])
    for err in all_error_types():
        if err.status != 405:
            assert f"`{err.code}`" in text, err.__name__
    envelope = schemas["Error"]
    assert {"responseCode", "requestId", "messageTh"} <= set(envelope["required"])
    assert paths["/api/v1/fisher/health"]["get"]["security"] == []


async def test_the_cli_export_is_what_the_admin_listener_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "openapi.json"
    assert cli_main(["openapi", "-c", str(path), "-o", str(out)]) == 0
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert cli_main(["openapi", "-c", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == exported
    async with (
        live_gateway(yaml.safe_load(path.read_text(encoding="utf-8"))) as gw,
        aiohttp.ClientSession() as s,
        s.get(f"{gw.admin_url}/openapi.json") as r,
    ):
        assert r.status == 200 and r.content_type == "application/json"
        served = await r.json()
    served["info"]["version"] = exported["info"]["version"]  # the digest of the file it read
    assert served == exported
    assert cli_main(["openapi", "-c", str(tmp_path / "missing.yaml")]) == 1


async def test_schemathesis_finds_no_server_error_and_nothing_outside_the_description(
    tmp_path: Path,
) -> None:
    """A live gateway on loopback, fuzzed from its own description.

    Two checks are left out on purpose: LC2 answers a missing Authorization header like any
    missing LC2 header, 400 with ``missingHeaders`` (``ignored_auth`` and
    ``missing_required_header`` expect 401), and a citizen ID's check digit can not be
    written in JSON Schema, so most IDs generated as "valid" are rightly refused
    (``positive_data_acceptance``).
    """
    cfg = _config(tmp_path)
    async with live_gateway(cfg) as gw:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{gw.admin_url}/openapi.json",
            "--url",
            gw.url,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,ignored_auth,missing_required_header",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "2562",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--auth",
            f"Linkage Service:{PASSWORD}",
            "-H",
            f"X-User-Request: {OFFICER}",
            "-H",
            f"X-Office-Request: {OFFICE}",
            "-H",
            "User-Agent: Linkage Center 2/1.0",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-6000:]
    assert "No issues found" in text
    generated = re.search(r"(\d+) generated, (\d+) passed", text)
    assert generated is not None and int(generated.group(1)) >= 200, text[-2000:]
