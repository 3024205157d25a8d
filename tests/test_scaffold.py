"""``lc2-gateway scaffold`` on legacy tables unlike the demo (tests/legacy_tables.py).

For each table: the draft picks the citizen-ID key and binds the spellings it
holds, gives every column the transforms its data calls for, joins code
columns to their code table or stubs a lookup, passes ``check --connect``
as printed, and served through the gateway answers what the table's
generator computed from the truth.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.app import build_app, build_runtime
from gateway.cli import main
from gateway.scaffold.evidence import examine
from gateway.scaffold.names import camel, dopa_name
from tests.conftest import MysqlServer, PgServer
from tests.gateway_process import ROOT
from tests.legacy_tables import KINDS, Fixture, fixture_for, load
from tests.soap_server import LICENCES, NS, running_soap_server
from tests.support import (
    TEST_ENV,
    MakeClient,
    base_config,
    lc2_headers,
    make_pid,
    settings_from,
)

PLACEHOLDER = {  # a config has at least one service before the first is drafted
    "backend": "legacy",
    "operation": {"query": "SELECT 1 AS one"},
    "output": {"one": "one"},
}


def write_config(tmp_path: Path, backend: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    cfg = base_config(tmp_path, {"legacy": backend}, {"placeholder": PLACEHOLDER})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, cfg


def merge(path: Path, cfg: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    cfg["lookups"].update(draft.get("lookups") or {})
    cfg["services"].update(draft["services"])
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return cfg


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(params=KINDS)
def legacy(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    mysql_server: MysqlServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, Fixture, Path, dict[str, Any]]:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    kind: str = request.param
    fx = fixture_for(kind)
    backend = asyncio.run(load(kind, pg_server.dsn, mysql_server, fx))
    path, cfg = write_config(tmp_path, backend)
    return kind, fx, path, cfg


def draft_of(
    fx: Fixture, path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, Any]]:
    code, out, err = run(
        ["scaffold", "-c", str(path), "--backend", "legacy", "--table", fx.table], capsys
    )
    assert code == 0, err
    return out, yaml.safe_load(out)


def right_columns(fx: Fixture, service: dict[str, Any]) -> list[str]:
    """The planned fields the draft got exactly right (column and transforms)."""
    output = service["output"]
    return [
        name
        for name, (column, transforms) in fx.plan.items()
        if output.get(name) == {"column": column, "transform": transforms}
    ]


async def test_scaffold_drafts_a_service_that_serves_the_truth(
    legacy: tuple[str, Fixture, Path, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    aiohttp_client: MakeClient,
) -> None:
    kind, fx, path, cfg = legacy
    text, draft = await asyncio.to_thread(draft_of, fx, path, capsys)
    ((name, service),) = draft["services"].items()
    assert name == camel(fx.table)

    # the key, its spellings bound as stored, and the sandbox matching on it
    key_column = fx.plan["personalId"][0]
    assert service["params"] == {
        "personalId": {"type": "citizen_id", "description": "citizen ID (13 digits)"}
    }
    spellings = {
        "mariadb-utf8mb4": ["", "__dashed"],
        "mariadb-latin1": ["", "__dashed"],
        "postgresql": ["", "__dashed", "__spaced"],
        "odbc-char": ["", "__padded"],
    }[kind]
    binds = ", ".join(f":personalId{s}" for s in spellings)
    assert f"t.{key_column} IN ({binds})" in " ".join(service["operation"]["query"].split())
    assert service["sandbox"]["match"] == {"personalId": key_column}

    # every column's transforms, and its lookup
    assert right_columns(fx, service) == list(fx.plan), service["output"]
    assert set(service["output"]) == set(fx.plan)
    stubs = {
        f: t
        for f, (_, t) in fx.plan.items()
        if any("lookup" in s for s in t if isinstance(s, dict))
    }
    for steps in stubs.values():
        table = steps[-1]["lookup"]
        assert draft["lookups"][table] == {
            c: c for c in sorted({"A", "C"} if "status" in table else {"1", "2"})
        }
    assert "LEFT JOIN" in service["operation"]["query"]

    # evidence as comments, and no sampled value in clear (names, IDs)
    assert "# " in text and "TIS-620" in text if kind.startswith("mariadb") else True
    for pid in fx.served:
        assert pid not in text and pid[:5] not in text.replace(" ", "")
    for row in fx.rows:
        for col in ("fname", "lname"):
            if col in row:
                assert row[col].strip() not in text

    # as printed, it passes check --connect
    cfg = merge(path, cfg, draft)
    code, out, err = await asyncio.to_thread(run, ["check", "--connect", "-c", str(path)], capsys)
    assert code == 0, out + err
    assert "legacy" in out and "OK" in out

    # served through the gateway: what the generator computed from the truth
    client = await aiohttp_client(build_app(build_runtime(settings_from(cfg))))
    for pid, expected in fx.served.items():
        resp = await client.get(
            f"/api/v1/{name}", params={"personalId": pid}, headers=lc2_headers()
        )
        assert resp.status == 200, await resp.text()
        data = (await resp.json())["data"]
        assert len(data) == len(expected), pid[-4:]
        for want in expected:
            assert any(all(got.get(k) == v for k, v in want.items()) for got in data), [
                {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v} for got in data
            ]


def test_a_key_column_found_by_content_alone() -> None:
    """No name hints: 13 digits that pass the checksum make the key."""
    a, b = make_pid("110170020345"), make_pid("321010011890")
    dashed = f"{b[0]}-{b[1:5]}-{b[5:10]}-{b[10:12]}-{b[12]}"
    ev = examine("COL_A", [a, dashed, None, make_pid("500000000001")])
    assert ev.kind == "pid" and ev.valid_pids == 3
    assert dict(ev.spellings) == {"plain": 2, "dashed": 1}


def test_dopa_names() -> None:
    assert dopa_name("BIRTH_DATE") == "dateOfBirth"
    assert dopa_name("PROV_CODE") == "provinceCode"
    assert dopa_name("TAMBON_NAME") == "subdistrictDesc"
    assert dopa_name("LNAME") == "lastName"
    assert dopa_name("FARM_AREA") is None and camel("FARM_AREA") == "farmArea"


def test_placeholders_typed_for_no_value() -> None:
    soi = examine("SOI", ["ซอยวัดใหม่", "-", "ซอยร่วมใจ ", "-", None])
    assert soi.transform == ["clean", {"null_if": ["-"]}]
    moo = examine("MOO", ["3", "0", "12", "0", "7"])
    assert moo.transform == ["trim", {"null_if": ["0"]}, "int"]
    count = examine("BOATS", ["3", "0", "12", "0", "7"])  # elsewhere 0 is a number
    assert count.transform == ["trim", "int"]


def test_scaffold_from_a_query(
    pg_server: PgServer,
    mysql_server: MysqlServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A join or a view: the draft selects from it and binds the key's spellings on it."""
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    fx = fixture_for("postgresql")
    path, cfg = write_config(
        tmp_path, asyncio.run(load("postgresql", pg_server.dsn, mysql_server, fx))
    )
    query = (
        "SELECT p.pid, p.birth, v.prov_name FROM person_be p "
        "JOIN province v ON v.prov_code = p.prov_code"
    )
    argv = ["scaffold", "-c", str(path), "--backend", "legacy", "--query", query,
            "--service", "personJoined"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    service = yaml.safe_load(out)["services"]["personJoined"]
    sql = " ".join(service["operation"]["query"].split())
    assert sql.startswith(f"SELECT s.* FROM ({query}) s WHERE s.pid IN (:personalId, ")
    assert service["output"]["dateOfBirth"] == {"column": "birth", "transform": ["be_date"]}
    merge(path, cfg, yaml.safe_load(out))
    assert run(["check", "-c", str(path)], capsys)[0] == 0
    code, _, err = run(["scaffold", "-c", str(path), "--backend", "legacy"], capsys)
    assert code == 2 and "give --table TABLE, --query SQL, or --operation NAME" in err


async def test_scaffold_a_soap_operation_from_a_saved_answer(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: MakeClient,
) -> None:
    """The request from the WSDL, the rows from one answer the operator saved: the draft
    passes check --connect and serves the vendor's records."""
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    owner = next(iter(LICENCES))
    envelope = (
        '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:v="{NS}"><e:Body><v:GetVesselLicences><v:ownerId>{owner}</v:ownerId>'
        "</v:GetVesselLicences></e:Body></e:Envelope>"
    )
    with running_soap_server() as srv:
        async with httpx.AsyncClient() as http:  # as SoapUI would, once
            saved = await http.post(
                srv.url, content=envelope, headers={"Content-Type": "text/xml; charset=utf-8"}
            )
        answer = tmp_path / "answer.xml"
        answer.write_bytes(saved.content)
        wsdl = ROOT / "config" / "vessels" / "vessel-licence.wsdl"
        backend = {"type": "soap", "wsdl": str(wsdl), "endpoint": srv.url}
        ping = {"backend": "legacy", "operation": {"name": "Ping", "rows": "PingResponse"},
                "output": {"pong": "PingResult"}}  # fmt: skip
        cfg = base_config(tmp_path, {"legacy": backend}, {"placeholder": ping})
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        argv = ["scaffold", "-c", str(path), "--backend", "legacy",
                "--operation", "GetVesselLicences", "--answer", str(answer)]  # fmt: skip
        code, text, err = await asyncio.to_thread(run, argv, capsys)
        assert code == 0, err
        assert owner not in text
        draft = yaml.safe_load(text)
        service = draft["services"]["getVesselLicences"]
        assert service["operation"] == {
            "name": "GetVesselLicences",
            "request": {"ownerId": "{personalId}"},
            "rows": "GetVesselLicencesResponse/GetVesselLicencesResult/Licence",
        }
        out = service["output"]
        assert out["personalId"] == {"column": "owner.personalId", "transform": ["pid"]}
        assert out["firstName"] == {"column": "owner.firstName", "transform": ["clean"]}
        assert out["issueDate"] == {"column": "issueDate", "transform": ["date"]}
        assert out["grossTonnage"] == {
            "column": "vessel.grossTonnage",
            "transform": ["trim", "int"],
        }
        assert service["sandbox"]["match"] == {"personalId": "owner.personalId"}
        merge(path, cfg, draft)
        code, report, err = await asyncio.to_thread(
            run, ["check", "--connect", "-c", str(path)], capsys
        )
        assert code == 0, report + err

        client = await aiohttp_client(build_app(build_runtime(settings_from(cfg))))
        resp = await client.get(
            "/api/v1/getVesselLicences", params={"personalId": owner}, headers=lc2_headers()
        )
        assert resp.status == 200, await resp.text()
        data = (await resp.json())["data"]
    vendor = LICENCES[owner]
    assert [(d["licenceNo"], d["issueDate"], d["firstName"], d["grossTonnage"]) for d in data] == [
        (v.licenceNo, v.issueDate.isoformat(), v.owner.firstName, v.vessel.grossTonnage)
        for v in vendor
    ]
