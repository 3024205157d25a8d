"""Dashboards and alerts in deploy/, checked by Prometheus's own tools against a live gateway.

- ``promtool check rules`` and ``promtool test rules`` (deploy/prometheus/alerts.test.yml:
  every alert fires when it should and stays silent when it should not);
- ``promtool check config`` on the example scrape config, and the blackbox
  exporter's ``--config.check`` on its module, then a real probe of a local
  TLS listener through that module;
- a running gateway is made to produce every kind of series (quota refusals,
  an open circuit, mapping failures, a reload) and its ``/metrics`` passes
  ``promtool check metrics``;
- every metric and label the dashboard and the rules use is in that scrape (or
  the blackbox exporter's), so renaming a metric breaks the build, and every
  dashboard query parses as PromQL (``promtool check rules`` on them).

The Debian packages ``prometheus`` (promtool) and ``prometheus-blackbox-exporter``
are needed; a missing tool fails with the command that installs it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_process import CLI, GatewayProcess, http_get
from tests.support import (
    PASSWORD,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
    base_config,
    fisher_service,
    free_port,
    lc2_headers,
    make_sqlite_db,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "alerts.yml"
RULE_TESTS = PROM / "alerts.test.yml"
RULE_TESTS_DAYS = PROM / "alerts-days.test.yml"  # same rules, a coarser evaluation interval
DASHBOARD = ROOT / "deploy" / "grafana" / "lc2-gateway.json"

# Series Prometheus makes itself, not an exporter: allowed in rules without a scrape.
PROMETHEUS_SERIES = {"up"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: apt-get install {package}")
    return path


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> tuple[int, str]:
    r = subprocess.run(
        [_tool("promtool", "prometheus"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    return r.returncode, r.stdout + r.stderr


# --- PromQL: which metrics and labels an expression uses ------------------------------

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|\[[^\]]*\]'
    r"|[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9.eE+-]*|=~|!~|!=|==|>=|<=|\S"
)
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "group", "topk"}
_AGGREGATIONS |= {"bottomk", "quantile", "count_values", "limitk", "limit_ratio"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}
_KEYWORDS |= _LABEL_LISTS | _AGGREGATIONS
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$job": "lc2-gateway",
    "$instance": ".*",
    "$service": ".*",
}


@dataclass
class Usage:
    metrics: dict[str, set[str]] = field(default_factory=dict)  # name -> matcher labels
    grouping: set[str] = field(default_factory=set)  # labels in by (...) and the like


def promql_usage(expr: str) -> Usage:
    """Metric names with their matcher labels, and grouping labels, of one expression."""
    tokens = _TOKEN.findall(expr)
    use = Usage()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _LABEL_LISTS and nxt == "(":
            j = i + 2
            while tokens[j] != ")":
                if tokens[j] != ",":
                    use.grouping.add(tokens[j])
                j += 1
            i = j + 1
            continue
        if tok == "{":  # a selector without a name: {__name__=...} is not used here
            raise AssertionError(f"selector without a metric name in {expr!r}")
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", tok) and tok not in _KEYWORDS and nxt != "(":
            labels = use.metrics.setdefault(tok, set())
            if nxt == "{":
                j = i + 2
                while tokens[j] != "}":
                    if tokens[j + 1 : j + 2] and tokens[j + 1] in ("=", "!=", "=~", "!~"):
                        labels.add(tokens[j])
                    j += 1
                i = j
        i += 1
    return use


def test_promql_usage_reads_selectors_and_grouping() -> None:
    use = promql_usage(
        'sum by (service, le) (rate(a_bucket{kind="data", code!~"5.."}[5m])) / '
        "on (service) group_left b_total > 0.5 and up"
    )
    assert use.metrics == {"a_bucket": {"kind", "code"}, "b_total": set(), "up": set()}
    assert use.grouping == {"service", "le"}


def rule_exprs() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for group in doc["groups"]:
        for i, rule in enumerate(group["rules"]):
            out[f"{rule['alert']}#{i}"] = rule["expr"]
    return out


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def dashboard_exprs() -> dict[str, str]:
    """Every panel query, Grafana's variables replaced by what they stand for."""
    out: dict[str, str] = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"panel {panel['title']!r}: unknown variable in {expr}"
            out[f"{panel['title']} {target['refId']}"] = expr
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            selector = m.group(1)
            for name, value in GRAFANA_VARS.items():
                selector = selector.replace(name, value)
            out[f"variable {var['name']}"] = f"count by ({m.group(2)}) ({selector})"
    return out


# --- rules --------------------------------------------------------------------------------


def test_rules_pass_promtool_check() -> None:
    code, out = promtool("check", "rules", str(RULES))
    assert code == 0, out
    assert "SUCCESS" in out


def test_rules_pass_their_unit_tests() -> None:
    code, out = promtool("test", "rules", RULE_TESTS.name, RULE_TESTS_DAYS.name, cwd=PROM)
    assert code == 0, out
    assert out.count("SUCCESS") == 2, out


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = {e.split("#")[0] for e in rule_exprs()}
    fires: set[str] = set()
    silent: set[str] = set()
    for path in (RULE_TESTS, RULE_TESTS_DAYS):
        tests = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert tests["rule_files"] == [RULES.name]
        for case in tests["tests"]:
            for check in case["alert_rule_test"]:
                (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts - fires == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown silent"


def test_rule_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a loosened threshold fails them."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    text = RULES.read_text(encoding="utf-8")
    assert text.count("> 0.05") == 1
    (tmp_path / RULES.name).write_text(text.replace("> 0.05", "> 0.5"), encoding="utf-8")
    code, out = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert code != 0 and "LC2GatewayHighErrorRate" in out, out


def test_rules_carry_severity_and_thai_summary() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        notes = rule["annotations"]
        assert {"summary", "summary_th", "description", "runbook"} <= set(notes), rule["alert"]
        assert re.search("[\u0e00-\u0e7f]", notes["summary_th"]), rule["alert"]
    guide = (ROOT / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    assert "## When an alert fires" in guide  # the runbook anchor the rules link to


# --- scrape config and blackbox module ------------------------------------------------------


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    code, out = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert code == 0, out
    assert "SUCCESS: 1 rule files found" in out
    jobs = {
        s["job_name"]
        for s in yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]
    }
    used = {
        m.group(1) for expr in rule_exprs().values() for m in re.finditer(r'job="([^"]+)"', expr)
    }
    assert used <= jobs, "the rules select jobs the scrape config does not define"


def test_fleet_scrape_config_passes_promtool_and_keeps_the_jobs() -> None:
    fleet = PROM / "prometheus-fleet.yml"
    code, out = promtool("check", "config", str(fleet))
    assert code == 0, out
    one, many = (yaml.safe_load(p.read_text()) for p in (PROM / "prometheus.yml", fleet))
    assert [s["job_name"] for s in many["scrape_configs"]] == [
        s["job_name"] for s in one["scrape_configs"]
    ], "the alert rules select these jobs: a fleet keeps their names"
    servers = {g["labels"]["server"] for g in many["scrape_configs"][0]["static_configs"]}
    assert len(servers) == 3


def blackbox(*args: str) -> subprocess.CompletedProcess[str]:
    tool = _tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=30)


def test_blackbox_module_passes_config_check(tmp_path: Path) -> None:
    assert blackbox(f"--config.file={PROM / 'blackbox.yml'}", "--config.check").returncode == 0
    broken = tmp_path / "blackbox.yml"
    broken.write_text((PROM / "blackbox.yml").read_text().replace("prober: tcp", "probr: tcp"))
    assert blackbox(f"--config.file={broken}", "--config.check").returncode != 0


@pytest.fixture(scope="module")
def blackbox_scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shipped TLS module probing a local TLS listener, as Prometheus would scrape it."""
    tmp = tmp_path_factory.mktemp("blackbox")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    module = yaml.safe_load((PROM / "blackbox.yml").read_text())
    module["modules"]["lc2_tls"]["tcp"]["tls_config"]["ca_file"] = str(cert)  # trust it
    config = tmp / "blackbox.yml"
    config.write_text(yaml.safe_dump(module))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    tls_port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = free_port()
    tool = _tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    proc = subprocess.Popen(
        [tool, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/probe?module=lc2_tls&target=127.0.0.1:{tls_port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                status, body, _ = http_get(url)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "blackbox exporter did not start"
            time.sleep(0.1)
        text = body.decode()
        end = subprocess.run(
            ["openssl", "x509", "-noout", "-enddate", "-in", str(cert)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        not_after = dt.datetime.strptime(end.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["probe_success"] == 1
        expiry = not_after.replace(tzinfo=dt.UTC).timestamp()
        assert samples["probe_ssl_earliest_cert_expiry"] == pytest.approx(expiry, abs=1)
        yield text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        stop.set()
        thread.join()
        listener.close()


# --- a live gateway ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_scrape(tmp_path_factory: pytest.TempPathFactory) -> str:
    """/metrics of a running gateway after calls that make every kind of series."""
    tmp = tmp_path_factory.mktemp("scrape")
    db = make_sqlite_db(tmp / "legacy.sqlite")
    port, admin = free_port(), free_port()
    services = {
        "fisher": fisher_service("legacy", SQLITE_QUERY),
        "vessel": {**fisher_service("vessels", SQLITE_QUERY), "path": "vessel"},
    }
    backends = {
        "legacy": sqlite_backend(db),
        "vessels": sqlite_backend(tmp / "missing.sqlite", circuit={"failure_threshold": 1}),
    }
    cfg = base_config(tmp, backends, services)
    cfg["listen"] = {"host": "127.0.0.1", "port": port}
    cfg["admin"] = {"host": "127.0.0.1", "port": admin}
    cfg["limits"] = {
        "store": str(tmp / "quota.sqlite"),
        "quotas": [
            {
                "name": "fisher-day",
                "scope": "officer",
                "per": "day",
                "limit": 5,
                "services": ["fisher"],
            }
        ],
    }
    cfg["maintenance"] = {"file": str(tmp / "maintenance")}
    config = tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

    base = f"http://127.0.0.1:{port}/api/v1"
    with GatewayProcess(config, admin, env=TEST_ENV) as gw:
        # the legacy backend is probed once (its probe latency is a series from then on)
        deadline = time.monotonic() + 10
        while (
            b'lc2_gateway_backend_probe_duration_seconds{backend="legacy"}'
            not in (http_get(f"{gw.admin}/metrics")[1])
        ):
            assert time.monotonic() < deadline, "no probe of the legacy backend"
            time.sleep(0.05)
        headers = lc2_headers()

        def code(path: str, sent: dict[str, str] = headers) -> str:
            answer: str = json.loads(http_get(base + path, sent)[1])["responseCode"]
            return answer

        pid = PEOPLE[0]["pid"]
        # the last person's birth date can not be read: a mapping failure
        codes = [code(f"/fisher?personalId={p['pid']}") for p in PEOPLE]
        codes.append(code(f"/fisher/sandbox?personalId={pid}"))
        while "204" not in codes:  # a quota refusal (the daily window may have just turned)
            codes.append(code(f"/fisher?personalId={pid}"))
            assert len(codes) < 20, codes
        # the first failure opens the circuit, the second finds it open
        codes += [code(f"/vessel?personalId={pid}"), code(f"/vessel?personalId={pid}")]
        wrong = {**headers, "Authorization": "Basic " + base64.b64encode(b"x:y").decode()}
        codes += [code(f"/fisher?personalId={pid}", wrong), code("/nothing")]
        assert {"000", "204", "301", "310", "103", "201"} <= set(codes), codes
        # `lc2-gateway reload` asks with the admin token; a bare POST is refused
        assert http_get(f"{gw.admin}/-/reload", method="POST")[0] == 401
        reload = subprocess.run(
            [*CLI, "reload", "-c", str(config)], env=gw.env, capture_output=True, timeout=60
        )
        assert reload.returncode == 0, reload.stderr
        status, body, response_headers = http_get(f"{gw.admin}/metrics")
        assert status == 200
        assert response_headers["Content-Type"].startswith("text/plain")
    assert PASSWORD not in gw.output
    return body.decode()


@pytest.fixture(scope="module")
def verify_textfile(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What the daily `audit verify` leaves for the node exporter's textfile collector."""
    import asyncio

    from gateway.audit import AuditWriter
    from tests.audit_support import call, cli, settings, write_calls, write_config

    tmp = tmp_path_factory.mktemp("verify")
    config = write_config(tmp)

    async def fill() -> None:  # a store with its seal key, as a running gateway leaves it
        s = settings(config)
        w = AuditWriter(s.audit, s.services)
        await w.start()
        await write_calls(w, [call(time.time())])
        await w.seal_now()
        await w.close()

    asyncio.run(fill())
    (tmp / "textfile").mkdir()
    out = tmp / "textfile" / "lc2_gateway_audit_verify.prom"
    code, _, err = cli("audit", "verify", "-c", str(config), "--textfile", str(out))
    assert code in (0, 3), err
    return out.read_text(encoding="utf-8")


def test_verify_textfile_passes_promtool_and_says_the_outcome(verify_textfile: str) -> None:
    code, out = promtool("check", "metrics", stdin=verify_textfile)
    assert code == 0 and not out.strip(), out
    exposed, _ = _families(verify_textfile)
    assert set(exposed) == {
        "lc2_gateway_audit_verify_exit_code",
        "lc2_gateway_audit_verify_last_run_timestamp_seconds",
    }
    assert "lc2_gateway_audit_verify_exit_code 0.0" in verify_textfile


def test_live_scrape_passes_promtool_check_metrics(gateway_scrape: str) -> None:
    code, out = promtool("check", "metrics", stdin=gateway_scrape)
    assert code == 0 and not out.strip(), out


def test_live_scrape_has_process_and_python_collectors(gateway_scrape: str) -> None:
    exposed, _ = _families(gateway_scrape)
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert name in exposed, name


def _families(*scrapes: str) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Exposed sample names with their label names, and each sample name's family."""
    labels: dict[str, set[str]] = {}
    family_of: dict[str, str] = {}
    for text in scrapes:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels.setdefault(sample.name, set()).update(sample.labels)
                family_of[sample.name] = family.name
    return labels, family_of


def test_dashboard_and_rules_use_only_exposed_metrics(
    gateway_scrape: str, blackbox_scrape: str, verify_textfile: str
) -> None:
    exposed, family_of = _families(gateway_scrape, blackbox_scrape, verify_textfile)
    exprs = {**{f"rule {k}": v for k, v in rule_exprs().items()}, **dashboard_exprs()}
    used: set[str] = set()
    for where, expr in exprs.items():
        usage = promql_usage(expr)
        assert usage.metrics, f"{where}: no metric in {expr}"
        names = set(usage.metrics) - PROMETHEUS_SERIES
        known_labels = set(TARGET_LABELS)
        for name in names:
            assert name in exposed, f"{where}: {name} is not in a live scrape"
            labels = usage.metrics[name] - TARGET_LABELS
            assert labels <= exposed[name], f"{where}: {name} has no label {labels - exposed[name]}"
            known_labels |= exposed[name]
        assert usage.grouping <= known_labels, f"{where}: no label {usage.grouping - known_labels}"
        used |= names
    # and the other way round: every metric the gateway exposes is on a panel or in a rule
    ours = {f for f in family_of.values() if f.startswith("lc2_gateway_")}
    ours = {f for f in ours if not f.endswith("_created")}
    watched = {family_of[name] for name in used}
    assert ours - watched == set(), "metrics on no panel and in no rule"


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_exprs().values())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    code, out = promtool("check", "rules", str(path))
    assert code == 0, out


def test_dashboard_structure() -> None:
    doc = dashboard()
    assert doc["uid"] == "lc2-gateway" and doc["schemaVersion"] >= 36
    names = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "job", "instance", "service"} <= names
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        cells = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel.get("description"), f"panel {panel['title']!r} has no description"
            assert panel["targets"], panel["title"]
    titles = " ".join(p["title"].lower() for p in doc["panels"])
    for topic in (
        "calls",
        "latency",
        "errors",
        "health",
        "circuit",
        "audit",
        "quota",
        "reload",
        "maintenance",
    ):
        assert topic in titles, f"no panel about {topic}"
