"""The wheel, installed into a clean venv, does what the suite proves of the source tree.

Run by ``.ci/wheel.sh`` twice: against the base install, then against one with the
``odbc`` and ``oracle`` extras.  Each backend type is served for real by the installed
``lc2-gateway serve`` (PostgreSQL, MariaDB, a spyne SOAP service, a legacy HTTP endpoint,
SQLite, dBase, CSV and fixed-width exports; ODBC drivers with the extra), and so are the demo
config, the exports example and the SOAP example a user tries after the README's first command.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from tests.files_support import age
from tests.gateway_process import GatewayProcess, http_get
from tests.http_upstream import running_http_upstream
from tests.installed.conftest import ROOT, Installed
from tests.lockfile import LOCKS, canonical, read_lock
from tests.soap_server import running_soap_server
from tests.support import (
    EXPECTED,
    NO_RECORD_PID,
    PASSWORD_HASH,
    PEOPLE,
    TEST_ENV,
    base_config,
    basic,
    free_port,
    lc2_headers,
    make_pid,
)
from tests.test_backends_e2e import Operation, _fisher, _subset

# The extra that owns each adapter package not in the base install.
EXTRA_OF = {"adapters.odbc": "odbc", "adapters.oracle": "oracle", "gateway.testing": "testing"}
TEST_ONLY = ("pytest", "spyne", "hypothesis", "mypy", "dbf", "playwright", "schemathesis")
DEMO_PID = "1740100234561"  # the README's example


def _extra_of(kind: str) -> str | None:
    return "odbc" if kind.startswith("odbc") else None


def _serve(installed: Installed, config: Path, admin: int, env: dict[str, str]) -> GatewayProcess:
    return GatewayProcess(
        config,
        admin,
        env,
        cli=[str(installed.bin)],
        cwd=installed.cwd,
        base_env=installed.env,
    )


def _call(port: int, path: str, pid: str, **headers: str) -> tuple[int, Any]:
    status, body, _ = http_get(
        f"http://127.0.0.1:{port}/api/v1/{path}?personalId={pid}", {**lc2_headers(), **headers}
    )
    return status, json.loads(body)


def _audit_verify(installed: Installed, config: Path, env: dict[str, str]) -> None:
    r = installed.run("audit", "verify", "-c", str(config), env=env)
    assert r.returncode == 0 and "verify: OK" in r.stdout, r.stdout + r.stderr


def _example(tmp_path: Path, name: str) -> tuple[Path, int, int]:
    """config/NAME.yaml and its folder config/NAME/, copied outside the checkout, on free ports."""
    conf = tmp_path / "config"
    shutil.copytree(ROOT / "config" / name, conf / name)
    cfg = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text(encoding="utf-8"))
    port, admin = free_port(), free_port()
    cfg["listen"]["port"], cfg["admin"]["port"] = port, admin
    path = conf / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, port, admin


# --- the install itself ------------------------------------------------------------------


def test_only_installed_code_runs(installed: Installed) -> None:
    found = installed.python_json(
        "import json, sys, gateway, adapters; from importlib.metadata import distributions\n"
        "print(json.dumps({'gateway': gateway.__file__, 'adapters': adapters.__file__,"
        " 'path': sys.path, 'dists': sorted(d.metadata['Name'].lower() for d in distributions())}))"
    )
    venv = installed.venv.resolve()
    for package in ("gateway", "adapters"):
        assert venv in Path(found[package]).resolve().parents, f"{package} from {found[package]}"
    assert not [p for p in found["path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    dists = set(found["dists"])
    assert not dists & set(TEST_ONLY), f"test packages in the install: {dists & set(TEST_ONLY)}"
    assert ("pyodbc" in dists) == ("odbc" in installed.extras)
    assert ("oracledb" in dists) == ("oracle" in installed.extras)


def test_versions_are_the_locked_ones(installed: Installed) -> None:
    """The tested install carries what the bundle and the image carry: requirements/lock*.txt."""
    locked = read_lock(LOCKS / "lock.txt")
    for extra in sorted(installed.extras):
        locked |= read_lock(LOCKS / f"lock-{extra}.txt")
    found = installed.python_json(
        "import json; from importlib.metadata import distributions\n"
        "print(json.dumps({d.metadata['Name']: d.version for d in distributions()}))"
    )
    tools = {"pip", "setuptools", "wheel", "lc2-gateway"}
    have = {canonical(n): v for n, v in found.items() if canonical(n) not in tools}
    assert have == locked, "the install and the lock differ: run requirements/refresh.sh"


def test_version(installed: Installed) -> None:
    r = installed.run("--version")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"lc2-gateway \S+ \(config schema \d+\)\n", r.stdout), r.stdout
    assert r.stdout.split()[1] == version("lc2-gateway")  # the wheel of this checkout


def test_every_module_imports_with_what_its_install_declares(installed: Installed) -> None:
    """A module importing a distribution its install does not declare fails to import here."""
    failed: dict[str, str] = installed.python_json(
        "import importlib, json, pkgutil, sys, gateway, adapters\n"
        "failed = {}\n"
        "def note(name):  # a package the walk could not import\n"
        "    exc = sys.exc_info()[1]\n"
        "    failed[name] = getattr(exc, 'name', None) or repr(exc)\n"
        "for pkg in (gateway, adapters):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.', onerror=note):\n"
        "        if m.name.endswith('.__main__'):\n"
        "            continue  # runs the CLI\n"
        "        try:\n"
        "            importlib.import_module(m.name)\n"
        "        except ImportError as exc:\n"
        "            failed[m.name] = exc.name or str(exc)\n"
        "print(json.dumps(failed))"
    )
    requires = installed.python_json(
        "import json; from importlib.metadata import requires\n"
        "print(json.dumps(requires('lc2-gateway')))"
    )
    for name, missing in failed.items():
        owner = next((x for pkg, x in EXTRA_OF.items() if name.startswith(pkg)), None)
        assert owner is not None, f"{name} does not import in the base install: needs {missing}"
        assert owner not in installed.extras, f"{name} needs {missing} with [{owner}] installed"
        declared = [r for r in requires if f'extra == "{owner}"' in r]
        assert any(re.match(rf"{re.escape(missing)}\b", r, re.I) for r in declared), (
            f"{name} needs {missing}, which the [{owner}] extra does not declare: {declared}"
        )
    owned = {x for pkg, x in EXTRA_OF.items() if any(n.startswith(pkg) for n in failed)}
    assert owned == set(EXTRA_OF.values()) - installed.extras


def _sandbox_pid(installed: Installed, config: Path, env: dict[str, str] | None = None) -> str:
    """The sandbox's own person, as the registration pack gives it to LC2's testers."""
    r = installed.run("describe", "-c", str(config), "-s", "fisher", env=env or {})
    found = re.search(r"/sandbox\?personalId=(\d{13})", r.stdout)
    assert r.returncode == 0 and found, r.stdout + r.stderr
    return found.group(1)


# --- the demo, as the README serves it ------------------------------------------------------


def test_demo_is_served(installed: Installed, tmp_path: Path) -> None:
    demo, port, admin = _example(tmp_path, "demo")
    headers = {"Authorization": basic(password="demo-password")}

    with _serve(installed, demo, admin, {}) as gw:
        status, body = _call(port, "fisher", DEMO_PID, **headers)
        assert status == 200 and body["responseCode"] == "000", body
        assert (body["data"][0]["firstName"], body["data"][0]["dateOfBirth"]) == (
            "สมชาย",
            "1984-02-29",
        )
        sandbox_pid = _sandbox_pid(installed, demo)
        status, body = _call(port, "fisher/sandbox", sandbox_pid, **headers)
        assert status == 200 and body["data"], body
        assert _call(port, "fisher/sandbox", DEMO_PID, **headers)[1]["data"] == []
        status, raw, _ = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and json.loads(raw)["status"] == "up", raw
        status, metrics, _ = http_get(f"{gw.admin}/metrics")
        assert status == 200
        assert b'lc2_gateway_requests_total{code="000",kind="data",service="fisher"' in metrics
        promtool = shutil.which("promtool")
        assert promtool, "promtool not found: apt-get install prometheus"
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=metrics, capture_output=True, timeout=30
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

    r = installed.run("describe", "-c", str(demo), "-s", "fisher")
    assert r.returncode == 0 and "personalId" in r.stdout, r.stdout + r.stderr
    _audit_verify(installed, demo, {})


# --- every backend type, served by the installed gateway ---------------------------------------


def _config(tmp_path: Path, bcfg: dict[str, Any], query: Operation) -> tuple[Path, int, int]:
    port, admin = free_port(), free_port()
    cfg = base_config(tmp_path, {"legacy": bcfg}, {"fisher": _fisher(query)})
    cfg["listen"]["port"] = port
    cfg["admin"] = {"enabled": True, "port": admin}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, port, admin


def test_every_backend_type(
    installed: Installed, backend: tuple[str, dict[str, Any], Operation], tmp_path: Path
) -> None:
    kind, bcfg, query = backend
    config, port, admin = _config(tmp_path, bcfg, query)
    env = dict(TEST_ENV)
    extra = _extra_of(kind)
    if extra is not None and extra not in installed.extras:
        r = installed.run("check", "-c", str(config), env=env)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"pip install 'lc2-gateway[{extra}]'" in r.stdout + r.stderr, r.stdout + r.stderr
        return

    r = installed.run("check", "--connect", "-c", str(config), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    with _serve(installed, config, admin, env):
        for person in PEOPLE:
            status, body = _call(port, "fisher", person["pid"])
            assert status == 200, (kind, body)
            assert len(body["data"]) == 1, (kind, body)
            _subset(body["data"][0], EXPECTED[person["pid"]])
        assert _call(port, "fisher", NO_RECORD_PID)[1]["data"] == []
        status, body = _call(port, "fisher/sandbox", _sandbox_pid(installed, config, env))
        assert status == 200 and len(body["data"]) == 2
    _audit_verify(installed, config, env)


# --- the README's first command, then a SOAP config ----------------------------------------------


def test_soap_example_config(installed: Installed, tmp_path: Path) -> None:
    """config/vessels.yaml, as a user tries it after `pip install .`: zeep's async transport
    must be in the install for any SOAP backend to start."""
    vessels, port, admin = _example(tmp_path, "vessels")
    secret = "vessel-pass"
    with running_soap_server(users={"lc2gw": secret}) as srv, running_http_upstream() as up:
        env = {
            "VESSELS_SOAP_PASSWORD": secret,
            "VESSELS_AUDIT_KEY": "k" * 32,
            "VESSELS_SOAP_URL": srv.url,
            "PIPO_URL": up.url,
        }
        r = installed.run("check", "--connect", "-c", str(vessels), env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        with _serve(installed, vessels, admin, env) as gw:
            headers = {"Authorization": basic(password="demo-password")}
            status, body = _call(port, "vessel-licence", PEOPLE[0]["pid"], **headers)
            assert status == 200, (body, gw.output)
            assert body["data"][0]["owner"]["firstName"] == "สมชาย"
            status, body = _call(port, "vessel-movements", PEOPLE[0]["pid"], **headers)
            assert status == 200 and len(body["data"]) == 2, body
    _audit_verify(installed, vessels, env)


# --- the nightly exports (dBase, CSV, fixed width), config/exports.yaml ---------------------------


def test_exports_example_config(installed: Installed, tmp_path: Path) -> None:
    exports, port, admin = _example(tmp_path, "exports")
    # last night's export, not one in progress
    age(*(exports.parent / "exports").iterdir(), seconds=3600)
    env = {"EXPORTS_AUDIT_KEY": "k" * 40}
    r = installed.run("check", "--connect", "-c", str(exports), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    somchai = make_pid("174010023456")
    headers = {"Authorization": basic(password="demo-password")}
    with _serve(installed, exports, admin, env):
        found = {
            service: [row[key] for row in _call(port, service, somchai, **headers)[1]["data"]]
            for service, key in [
                ("fisher-licence", "licenceNo"),
                ("aqua-farm-register", "farmName"),
                ("fisher-compensation", "paymentDate"),
            ]
        }
    assert found == {
        "fisher-licence": ["PL-2567-000031", "PL-2566-000142"],
        "aqua-farm-register": ['ฟาร์มกุ้ง "สมชาย"', "บ่อปลานิล, แปลง ๒"],
        "fisher-compensation": ["2024-12-01", "2024-03-05"],
    }
    _audit_verify(installed, exports, env)


# --- the Oracle extra: no server here, so the import and the options ----------------------------


def _oracle_config(tmp_path: Path, **options: Any) -> Path:
    bcfg = {"type": "oracle", "dsn": "127.0.0.1:1521/LEGACY", "user": "lc2_ro", **options}
    cfg = base_config(tmp_path, {"legacy": bcfg}, {"fisher": _fisher("SELECT 1 FROM DUAL")})
    cfg["consumers"]["lc2"]["password_hash"] = PASSWORD_HASH
    path = tmp_path / "oracle.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_oracle_options(installed: Installed, tmp_path: Path) -> None:
    good = installed.run("check", "-c", str(_oracle_config(tmp_path)), env=TEST_ENV)
    if "oracle" not in installed.extras:
        assert good.returncode == 1
        assert "pip install 'lc2-gateway[oracle]'" in good.stdout + good.stderr
        return
    assert good.returncode == 0, good.stdout + good.stderr
    bad = installed.run(
        "check", "-c", str(_oracle_config(tmp_path, connect_timeout=0)), env=TEST_ENV
    )
    assert bad.returncode == 1
    assert "connect_timeout" in bad.stderr, bad.stdout + bad.stderr
