"""``describe``, ``routes`` and ``check --connect``: the operator's read-only commands.

The registration pack is checked by the clients that will read it: its sample
request is run with curl against a running gateway and must get exactly the
sample response; the CSV is read back by Python's csv module and the XLSX by
openpyxl; the HTML page is rendered by headless Chromium.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook
from pypdf import PdfReader

from gateway.app import build_admin_app, build_app
from gateway.cli import main
from gateway.config.build import load_settings
from gateway.describe.pack import (
    API_KEY_VARIABLE,
    PASSWORD_VARIABLE,
    SAMPLE_OFFICE,
    SAMPLE_OFFICER,
    Pack,
    ServiceDoc,
    load_pack,
)
from gateway.describe.routes import routes_of
from gateway.describe.sheet import DICTIONARY_HEADER, render_csv, write_xlsx
from gateway.describe.text import render_html, render_markdown, thai_date
from gateway.runtime import Runtime
from gateway.security.apikey import hash_api_key, new_api_key
from gateway.transforms import chain_types
from tests.browser import assert_real_screenshot, chromium
from tests.gateway_process import GatewayProcess
from tests.sample_checks import rows_problems
from tests.support import (
    PASSWORD,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    Client,
    base_config,
    basic,
    fisher_service,
    free_port,
    make_sqlite_db,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"
TODAY = dt.date(2025, 1, 15)
BASE = "https://lc2.fisheries.example.go.th"


def demo_copy(tmp_path: Path) -> tuple[Path, int, int]:
    """config/demo.yaml on free ports, its database built beside it (as on first start)."""
    conf = tmp_path / "config"
    shutil.copytree(ROOT / "config" / "demo", conf / "demo")
    port, admin = free_port(), free_port()
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace("port: 8080", f"port: {port}").replace("port: 9108", f"port: {admin}")
    (conf / "demo.yaml").write_text(text, encoding="utf-8")
    return conf / "demo.yaml", port, admin


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def demo_pack() -> Pack:
    return load_pack(DEMO, base_url=BASE, today=TODAY)


def service(pack: Pack, name: str) -> ServiceDoc:
    return next(s for s in pack.services if s.name == name)


# --- the pack's content ---------------------------------------------------------------


def test_pack_describes_every_service_field_and_parameter(demo_pack: Pack) -> None:
    assert [s.name for s in demo_pack.services] == ["aquaFarm", "fisher"]
    fisher = service(demo_pack, "fisher")
    assert fisher.description_th == "ทะเบียนชาวประมง"
    assert fisher.data_url == f"{BASE}/api/v1/fisher"
    assert fisher.sandbox_url == f"{BASE}/api/v1/fisher/sandbox"
    assert fisher.health_url == f"{BASE}/api/v1/fisher/health"
    assert fisher.usernames == ("Linkage Service",)
    (param,) = fisher.params
    assert (param.name, param.location, param.type, param.required) == (
        "personalId",
        "query",
        "citizen_id",
        True,
    )
    assert "check digit" in param.rules_en and "13 หลัก" in param.rules_th
    assert param.description_th == "เลขประจำตัวประชาชน 13 หลัก"

    fields = {f.path: f for f in fisher.fields}
    settings = load_settings(DEMO, create_key_file=False)
    leaves = {f.name for f in settings.services["fisher"].mapper.columns()}
    assert {p.rsplit(".", 1)[-1] for p in fields} >= leaves  # every output field is listed
    assert fields["address"].type == "object" and fields["address.houseNo"].depth == 1
    assert (fields["address.houseNo"].meaning_en, fields["address.houseNo"].meaning_th) == (
        "House number",
        "บ้านเลขที่",
    )
    assert fields["address.houseNo"].source == "HOUSE_NO"
    assert fields["dateOfBirth"].type == "string" and "ISO 8601" in fields["dateOfBirth"].format_en
    assert fields["address.villageNo"].type == "integer"
    assert fields["genderDesc"].format_en == "description from the code table sex"
    assert service(demo_pack, "aquaFarm").fields[5].path == "areaRai"
    assert service(demo_pack, "aquaFarm").fields[5].type == "number"
    # every field has its meaning: from the DOPA dictionary or from the YAML
    assert demo_pack.warnings == ()
    assert fields["fisherTypeCode"].meaning_th == "รหัสประเภทชาวประมง"


def test_yaml_descriptions_override_the_dictionary(tmp_path: Path) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY)
    svc["output"]["firstName"] = {
        "column": "FULLNAME",
        "transform": ["cp874", "clean", {"name": "first"}],
        "description": "Given name as registered",
        "description_th": "ชื่อตัวตามทะเบียน",
    }
    svc["output"]["source"] = {"const": "DOF", "description": "x", "description_th": "ก"}
    svc["params"]["personalId"]["example"] = PEOPLE[0]["pid"]
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    pack = load_pack(path, base_url=BASE, today=TODAY)
    fields = {f.path: f for f in pack.services[0].fields}
    assert fields["firstName"].meaning_th == "ชื่อตัวตามทะเบียน"
    assert fields["lastName"].meaning_th == "ชื่อสกุล"  # from the dictionary
    assert (fields["source"].type, fields["source"].source) == ("string", 'constant "DOF"')
    assert pack.services[0].params[0].example == PEOPLE[0]["pid"]


@pytest.mark.parametrize(
    ("chain", "kind"),
    [
        (["pid"], "string"),
        ([{"pid": {"format": "dashed"}}], "string"),
        (["be_date"], "string"),
        ([{"be_date": {"output": "be_int"}}], "integer"),
        (["trim", {"null_if": ["0"]}, "int"], "integer"),
        (["trim", {"decimal": {"places": 2}}], "number"),
        (["bool"], "boolean"),
        (["int", "str"], "string"),
        (["cp874", "clean"], "string"),
        ([{"lookup": {"map": {"1": 10, "2": 20}}}], "integer"),
        ([{"null_if": ["-"]}], None),
        ([{"default": 0}], None),  # as stored, or 0: no one type
        (["int", {"default": 0}], "integer"),
    ],
)
def test_output_types_follow_the_transforms(chain: list[Any], kind: str | None) -> None:
    assert chain_types(chain, {}) == (None if kind is None else frozenset({kind}))


def test_pack_problems_are_warnings(tmp_path: Path) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY, description="Fishers")
    svc["params"]["personalId"]["example"] = "1234567890123"  # bad check digit
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    cfg["consumers"]["lc2"]["services"] = []
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    warnings = "\n".join(load_pack(path, base_url="http://10.0.0.5:8080").warnings)
    assert "services.fisher: add description and description_th" in warnings
    assert "params.personalId.example '1234567890123' is refused: checksum" in warnings
    assert "no consumer is granted this service" in warnings
    assert "is not https" in warnings


# --- the sample request, run for real -------------------------------------------------


def test_sample_requests_get_the_sample_responses_with_curl(tmp_path: Path) -> None:
    """An officer pastes the pack's curl command: the gateway answers what the pack shows."""
    config, port, admin = demo_copy(tmp_path)
    pack = load_pack(config, base_url=f"http://127.0.0.1:{port}", today=TODAY)
    curl = shutil.which("curl")
    assert curl, "curl not found: apt-get install curl"
    with GatewayProcess(config, admin):
        for svc in pack.services:
            assert svc.sample_curl and svc.sample_response
            assert PASSWORD_VARIABLE in svc.sample_curl and "demo-password" not in svc.sample_curl
            assert f"X-Office-Request: {SAMPLE_OFFICE}" in svc.sample_curl
            assert f"X-User-Request: {SAMPLE_OFFICER}" in svc.sample_curl
            r = subprocess.run(
                ["bash", "-c", svc.sample_curl],
                env={"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: "demo-password"},
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert r.returncode == 0, r.stderr
            answer = json.loads(r.stdout)
            assert answer == json.loads(svc.sample_response), svc.name
            assert answer["data"], f"{svc.name}: the sample shows no row"
            assert len(answer["data"]) == svc.sample_rows


async def test_sample_with_a_path_parameter_and_sandbox_match(
    tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY, path="fisher/{personalId}")
    rows = [{**{k: p[k] for k in ("PID", "FULLNAME", "SEX", "BIRTH_DATE", "MOO")}} for p in PEOPLE]
    svc["sandbox"] = {"rows": rows, "match": {"personalId": "PID"}}
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    base = "http://gateway.test"
    pack = load_pack(path, base_url=base, today=TODAY)
    doc = pack.services[0]
    assert doc.params[0].location == "path"
    assert doc.params[0].example == PEOPLE[0]["pid"]  # taken from the sandbox's first row
    assert doc.sample_url == f"{base}/api/v1/fisher/{PEOPLE[0]['pid']}/sandbox"
    assert doc.sample_rows == 1

    rt = Runtime(load_settings(path))
    client: Client = await aiohttp_client(build_app(rt))
    headers = {
        "Authorization": basic(password=PASSWORD),
        "X-Office-Request": SAMPLE_OFFICE,
        "X-User-Request": SAMPLE_OFFICER,
    }
    resp = await client.get(doc.sample_url.removeprefix(base), headers=headers)
    assert resp.status == 200
    assert await resp.json() == json.loads(doc.sample_response or "")


async def test_sample_for_an_api_key_consumer_runs_with_curl(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """A consumer that signs in with an API key only: the sample sends the key, no password."""
    key = new_api_key()
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY)
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    cfg["consumers"] = {"lc2": {"username": "LC2 proxy", "api_keys": [hash_api_key(key)]}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    rt = Runtime(load_settings(path))
    client: Client = await aiohttp_client(build_app(rt))
    base = str(client.make_url("")).rstrip("/")
    doc = load_pack(path, base_url=base, today=TODAY).services[0]
    assert doc.sample_curl is not None and doc.sample_response is not None
    assert f'"X-API-Key: ${API_KEY_VARIABLE}"' in doc.sample_curl
    assert " -u " not in doc.sample_curl
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        doc.sample_curl,
        env={"PATH": "/usr/bin:/bin", API_KEY_VARIABLE: key},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert json.loads(out) == json.loads(doc.sample_response)


# --- the formats --------------------------------------------------------------------------


def _md_tables(text: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c for c in line.replace("\\|", "\0").strip("|").split("|")]
            current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_is_well_formed(demo_pack: Pack) -> None:
    text = render_markdown(demo_pack)
    assert text.count("```") % 2 == 0
    tables = _md_tables(text)
    assert len(tables) == 1 + 3 * len(demo_pack.services) + 1
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, f"ragged table starting {table[0]}"
        assert all(set(c.strip()) <= {"-"} for c in table[1])
    for svc in demo_pack.services:
        assert f"## {svc.name}: {svc.description_th}" in text
        for f in svc.fields:
            assert f"`{f.path}`" in text
        assert svc.sample_curl and svc.sample_curl in text
    assert thai_date(TODAY) == "15 มกราคม 2568" and "15 มกราคม 2568" in text
    assert "| `104` | 400 |" in text


def test_csv_reads_back_with_thai_intact(demo_pack: Pack, tmp_path: Path) -> None:
    out = tmp_path / "pack.csv"
    assert main(["describe", "-c", str(DEMO), "--base-url", BASE, "-o", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8 Thai"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == DICTIONARY_HEADER
    expected = sum(len(s.params) + len(s.fields) for s in demo_pack.services)
    assert len(rows) == 1 + expected
    assert all(len(r) == len(DICTIONARY_HEADER) for r in rows)
    house = next(r for r in rows if r[0] == "fisher" and r[6] == "address.houseNo")
    assert house[11] == "บ้านเลขที่" and house[13] == "HOUSE_NO" and house[3].startswith(BASE)
    assert render_csv(demo_pack).startswith(DICTIONARY_HEADER[0])


def test_xlsx_reads_back_with_openpyxl(demo_pack: Pack, tmp_path: Path) -> None:
    out = tmp_path / "pack.xlsx"
    write_xlsx(demo_pack, out)
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["บริการ Services", "พจนานุกรมข้อมูล Dictionary", "รหัสผลลัพธ์ Codes"]
    services = list(wb["บริการ Services"].iter_rows(values_only=True))
    assert [r[0] for r in services[1:]] == ["aquaFarm", "fisher"]
    fisher = services[2]
    assert fisher[1] == "ทะเบียนชาวประมง" and fisher[3] == f"{BASE}/api/v1/fisher"
    assert json.loads(str(fisher[8]))["data"]  # the sample response, whole
    dictionary = list(wb["พจนานุกรมข้อมูล Dictionary"].iter_rows(values_only=True))
    assert tuple(dictionary[0]) == DICTIONARY_HEADER
    assert len(dictionary) == len(list(csv.reader(io.StringIO(render_csv(demo_pack)))))
    codes = list(wb["รหัสผลลัพธ์ Codes"].iter_rows(values_only=True))
    assert codes[[r[0] for r in codes].index("104")][:2] == ("104", 400)
    wb.close()


async def test_html_renders_in_chromium(demo_pack: Pack, tmp_path: Path) -> None:
    page_file = tmp_path / "pack.html"
    page_file.write_text(render_html(demo_pack), encoding="utf-8")
    shot = tmp_path / "pack.png"
    async with chromium(tmp_path) as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1400})
        await page.goto(page_file.as_uri())
        text = await page.inner_text("body")
        sections = await page.locator("section.service").count()
        await page.screenshot(path=str(shot))
        await page.close()
    assert sections == len(demo_pack.services) + 1
    assert "เอกสารประกอบการขอเชื่อมโยงข้อมูลกับ LC2" in text
    for svc in demo_pack.services:
        assert svc.description_th in text and svc.sandbox_url in text
        for f in svc.fields:
            assert f.path in text
    assert "บ้านเลขที่" in text and "15 มกราคม 2568" in text
    assert_real_screenshot(shot, (1200, 1400))


# the headings of a service and of the pack, by their English half (the PDF's Thai text
# comes out with presentation forms)
_HEADINGS = (
    "/ Common to every service",
    "/ Parameters",
    "/ Output fields",
    "/ Sample request (sandbox)",
    "/ Sample response",
    "/ Response and error codes",
)
VESSELS_ENV = {"VESSELS_SOAP_PASSWORD": "x", "VESSELS_AUDIT_KEY": "k" * 40}


def _at(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize("config", ["demo.yaml", "vessels.yaml"])
async def test_the_pack_passes_review_in_chromium(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in VESSELS_ENV.items():
        monkeypatch.setenv(key, value)
    pack = load_pack(ROOT / "config" / config, base_url=BASE, today=TODAY)
    assert pack.warnings == ()  # what describe --strict requires
    page_file = tmp_path / "pack.html"
    page_file.write_text(render_html(pack), encoding="utf-8")
    async with chromium(tmp_path) as browser:
        page = await browser.new_page()
        await page.goto(page_file.as_uri())
        shown = {
            svc.name: await page.locator(f"#service-{svc.name} pre.json").inner_text()
            for svc in pack.services
        }
        await page.emulate_media(media="print")
        pdf = await page.pdf(format="A4", print_background=True)
        await page.close()
    for svc in pack.services:
        for f in svc.fields:  # every output field has its meaning in Thai and English
            assert f.meaning_th and f.meaning_en, f"{svc.name}.{f.path}"
        rows = json.loads(shown[svc.name])["data"]
        assert rows, f"{svc.name}: the sample shows no row"
        types = {f.path: f.type for f in svc.fields}
        assert rows_problems(rows, types) == [], svc.name
        for f in svc.fields:  # the example column shows the sandbox's own values
            if f.type != "object":
                assert f.example == _at(rows[0], f.path), f"{svc.name}.{f.path}"
    # printed on A4, no heading is left alone at the foot of a page
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages[0].mediabox.width == pytest.approx(595, abs=2)  # A4: 210 mm
    for number, pdf_page in enumerate(reader.pages[:-1], 1):
        tail = [line for line in pdf_page.extract_text().splitlines() if line.strip()][-2:]
        for line in tail:
            heading = any(h in line for h in _HEADINGS) or any(
                line.startswith(f"{svc.name}: ") for svc in pack.services
            )
            assert not heading, f"page {number} ends with the heading {line!r}"


def test_html_escapes_what_the_config_says(tmp_path: Path) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    svc = fisher_service("legacy", SQLITE_QUERY, description="<script>alert(1)</script>")
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": svc})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    page = render_html(load_pack(path, base_url=BASE))
    assert "<script" not in page and "&lt;script&gt;" in page


# --- the command line ---------------------------------------------------------------------


def test_describe_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "-c", str(DEMO), "--base-url", BASE, "-s", "fisher"]) == 0
    out = capsys.readouterr()
    assert "## fisher: ทะเบียนชาวประมง" in out.out and "aquaFarm" not in out.out
    assert "warning" not in out.err

    xlsx = tmp_path / "pack.xlsx"
    assert main(["describe", "-c", str(DEMO), "-o", str(xlsx)]) == 0  # format from the name
    assert xlsx.read_bytes()[:2] == b"PK"
    html_out = tmp_path / "pack.html"
    assert main(["describe", "-c", str(DEMO), "--format", "html", "-o", str(html_out)]) == 0
    assert html_out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()

    assert main(["describe", "-c", str(DEMO), "--format", "xlsx"]) == 2  # binary to a terminal
    assert main(["describe", "-c", str(DEMO), "-o", str(tmp_path / "pack.txt")]) == 2
    assert main(["describe", "-c", str(DEMO), "-s", "nothing"]) == 1
    assert main(["describe", "-c", str(DEMO), "--strict", "--base-url", BASE]) == 0
    assert main(["describe", "-c", str(DEMO), "--strict"]) == 1  # the base URL is a guess
    assert main(["describe", "-c", str(tmp_path / "absent.yaml")]) == 1
    err = capsys.readouterr().err
    assert "no service named 'nothing'" in err and "give -o FILE.xlsx" in err


# --- routes ---------------------------------------------------------------------------------


def test_routes_lists_every_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "-c", str(DEMO)]) == 0
    rows = {tuple(line.split()) for line in capsys.readouterr().out.splitlines()}
    for row in (
        ("GET", "/api/v1/aqua-farm", "data", "aquaFarm", "fisheries"),
        ("GET", "/api/v1/fisher/sandbox", "sandbox", "fisher", "fisheries"),
        ("GET", "/api/v1/fisher/health", "health", "fisher", "fisheries"),
        ("GET", "/status", "status-page", "-", "-"),
        ("POST", "/-/reload", "reload", "-", "-"),
    ):
        assert row in rows, rows
    assert main(["routes", "-c", str(DEMO), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len([r for r in listed if r["listener"] == "lc2"]) == 1 + 3 * 2


async def test_routes_match_what_the_apps_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """The routes printed are the routes the two aiohttp applications really have."""
    settings = load_settings(DEMO, create_key_file=False)
    rt = Runtime(settings)
    admin = {
        (r.method, r.resource.canonical)
        for r in build_admin_app(rt).router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    listed = routes_of(settings)
    assert {(r.method, r.path) for r in listed if r.listener == "admin"} == admin
    router = rt.current.router
    for r in listed:
        if r.listener == "lc2" and r.service != "-":
            match = router.match(r.path)
            assert match is not None and (match.service.name, match.kind) == (r.service, r.kind)


# --- check --connect ------------------------------------------------------------------------


def test_check_connect_opens_and_probes_every_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    good = {"legacy": sqlite_backend(db)}
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, good, services)), encoding="utf-8")
    assert main(["check", "--connect", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "legacy (sqlite): OK, open and probe in" in out

    closed = free_port()
    monkeypatch.setenv("PG_PASSWORD", "not-a-real-password")
    backends = {
        **good,
        "missing": sqlite_backend(tmp_path / "missing.sqlite"),
        "registry": {
            "type": "postgresql",
            "dsn": f"postgresql://reader@127.0.0.1:{closed}/registry",
            "password": "${PG_PASSWORD}",
            "connect_timeout": 2,
        },
    }
    services["vessel"] = {**fisher_service("missing", SQLITE_QUERY), "path": "vessel"}
    services["person"] = {
        **fisher_service("registry", "SELECT * FROM t WHERE pid = :personalId"),
        "path": "person",
    }
    path.write_text(yaml.safe_dump(base_config(tmp_path, backends, services)), encoding="utf-8")
    assert main(["check", "--connect", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "legacy (sqlite): OK, open and probe in" in out
    assert "backends.missing: probe: database file" in err
    assert "backends.registry: open: " in err or "backends.registry: probe: " in err
    assert "2 problem(s) found" in err
    assert main(["check", "-c", str(path)]) == 0  # without --connect nothing is opened


def test_check_connect_reports_an_output_column_the_query_does_not_return(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    service = fisher_service("legacy", SQLITE_QUERY.replace("SELECT PID,", "SELECT PID AS REG_NO,"))
    service["output"]["personalId"] = {"column": "REG_NO", "transform": ["pid"]}
    service["output"]["registrationNo"] = {"column": "REG_NUM"}  # meant REG_NO
    service["output"]["address"] = {"fields": {"moo": {"column": "MOOO"}}}
    path = tmp_path / "gateway.yaml"
    text = yaml.safe_dump(base_config(tmp_path, {"legacy": sqlite_backend(db)}, {"f": service}))
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    line_of = {w: next(i for i, t in enumerate(lines, 1) if w in t) for w in ("REG_NUM", "MOOO")}

    assert main(["check", "-c", str(path)]) == 0  # the file alone is valid
    capsys.readouterr()
    assert main(["check", "--connect", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert (
        f"{path}:{line_of['REG_NUM']}: services.f.output.registrationNo.column: column "
        "'REG_NUM' is not in the backend's result (it has: BIRTH_DATE, FULLNAME, MOO, REG_NO, "
        "SEX)" in err
    )
    assert f"{path}:{line_of['MOOO']}: services.f.output.address.fields.moo.column:" in err
    assert "2 problem(s) found" in err and f"{path}: OK" not in out

    assert main(["check", "--connect", "--json", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and err == ""
    expected = {
        ("services.f.output.address.fields.moo.column", line_of["MOOO"]),
        ("services.f.output.registrationNo.column", line_of["REG_NUM"]),
    }
    found = [(p["path"], p["line"]) for p in doc["problems"]]
    assert found == sorted(expected, key=lambda p: p[1])  # in file order
    assert doc["backends"] == [
        {
            "name": "legacy",
            "type": "sqlite",
            "ok": True,
            "ms": doc["backends"][0]["ms"],
            "described": 1,
        }
    ]
    assert doc["services"]["f"]["data"] == "/api/v1/fisher"
