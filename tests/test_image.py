"""The container image, run as a department runs it.

The image is built by ``.ci/image.sh`` (from a Debian-made base, as a user's
``docker build`` would) which names it in ``LC2_TEST_IMAGE``. Here it serves
the demo's SQLite register and a SOAP service with a ``--read-only`` root file
system, the state on a volume and a tmpfs, as its non-root user: the
HEALTHCHECK turns healthy, calls from the container network are answered,
the admin listener is out of reach unless exposed on purpose, and SIGTERM
stops it within its grace period with every answered call in the audit trail,
which ``lc2-gateway audit verify`` (run from the image) finds intact.

The SOAP service is the spyne server of ``tests/soap_server.py``, bound to this
host's address on a Docker network made for the test; nothing leaves the host.
Without ``LC2_TEST_IMAGE`` the tests are skipped, except under ``CI=true``,
where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.soap_server import SoapServer, running_soap_server
from tests.support import PEOPLE

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
IMAGE = os.environ.get("LC2_TEST_IMAGE", "")
LABEL = "lc2-gateway.ci-image"  # .ci/image.sh removes whatever carries it
STATE = "/var/lib/lc2-gateway"
EXAMPLES = "/etc/lc2-gateway/examples"  # config/ in the image
CONFIG = "/etc/lc2-gateway/gateway.yaml"
SOAP_USER, SOAP_PASSWORD = "lc2gw", "image-test-soap-password"
AUTH = "Basic " + base64.b64encode(b"Linkage Service:demo-password").decode()
LC2_HEADERS = {
    "Authorization": AUTH,
    "X-Office-Request": "00023",
    "X-User-Request": "1101700203450",
}
STOP_TIMEOUT = 20  # docker's grace before SIGKILL; above the config's shutdown_timeout
SHUTDOWN_TIMEOUT = 10

# Decided per test, not at import: a missing image fails these tests, not the whole run.
pytestmark = pytest.mark.usefixtures("image_given")


@pytest.fixture(scope="module")
def image_given() -> None:
    if not IMAGE:
        reason = "LC2_TEST_IMAGE is not set: run .ci/image.sh, which builds the image and sets it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    if not shutil.which(DOCKER):
        pytest.fail(f"no docker client {DOCKER}: apt-get install docker.io", pytrace=False)


DOCKER = os.environ.get("LC2_TEST_DOCKER") or shutil.which("docker") or "docker"


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def inspect(name: str, template: str) -> str:
    return docker("inspect", "-f", template, name).stdout.strip()


def _project_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def demo_pid() -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "config" / "demo" / "make_fisheries_sql.py"), "--pids"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[0]


def image_config() -> dict[str, object]:
    """config/demo.yaml's register and config/vessels.yaml's SOAP service, state on the volume.

    The admin listener is written as in config/example.yaml: its host comes from
    LC2_ADMIN_HOST, 127.0.0.1 when unset, so what the image sets decides.
    """
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    vessels = yaml.safe_load((ROOT / "config" / "vessels.yaml").read_text())
    fisheries = {
        **demo["backends"]["fisheries"],
        "path": f"{STATE}/fisheries.sqlite",
        "create_if_missing": f"{EXAMPLES}/demo/fisheries.sql",
    }
    soap = {
        **vessels["backends"]["vessel_soap"],
        "wsdl": f"{EXAMPLES}/vessels/vessel-licence.wsdl",
        "endpoint": "${VESSELS_SOAP_URL}",
        "health": {"interval": 2, "timeout": 2},
    }
    return {
        "listen": {"host": "0.0.0.0", "port": 8080},
        "admin": {"host": "${LC2_ADMIN_HOST:-127.0.0.1}", "port": 9108},
        "lc2": demo["lc2"],
        "consumers": demo["consumers"],
        "audit": {"path": f"{STATE}/audit.sqlite", "key_file": f"{STATE}/audit.key"},
        "limits": {"store": f"{STATE}/quota.sqlite"},
        "lookups": {**demo["lookups"], **vessels["lookups"]},
        "backends": {"fisheries": fisheries, "vessel_soap": soap},
        "services": {
            "fisher": demo["services"]["fisher"],
            "vesselLicence": vessels["services"]["vesselLicence"],
        },
        "shutdown_timeout": SHUTDOWN_TIMEOUT,
    }


@dataclass(frozen=True)
class Network:
    name: str
    gateway: str  # this host's address on it


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    name = f"lc2-image-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", f"--label={LABEL}={IMAGE}", name)
    try:
        yield Network(name, inspect(name, "{{(index .IPAM.Config 0).Gateway}}"))
    finally:
        docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def soap(network: Network) -> Iterator[SoapServer]:
    with running_soap_server(users={SOAP_USER: SOAP_PASSWORD}, host=network.gateway) as srv:
        yield srv


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "gateway.yaml"
    path.write_text(yaml.safe_dump(image_config(), allow_unicode=True, sort_keys=False))
    path.chmod(0o644)  # read by the image's user through the bind mount
    path.parent.chmod(0o755)
    return path


class Gateway:
    """One container of the image, on its own volume, removed with the volume at the end."""

    def __init__(self, network: Network, soap: SoapServer, config: Path, *env: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.name = f"lc2-image-test-{tag}"
        self.volume = f"lc2-image-test-{tag}"
        self.network = network
        self.config = config
        self.env = [f"VESSELS_SOAP_URL={soap.url}", f"VESSELS_SOAP_PASSWORD={SOAP_PASSWORD}", *env]
        self.address = ""

    def options(self) -> list[str]:
        """What every container of this gateway gets: volume, config, environment, label."""
        env = [f"--env={e}" for e in self.env]
        mounts = [f"--volume={self.volume}:{STATE}", f"--volume={self.config}:{CONFIG}:ro"]
        return ["--read-only", f"--label={LABEL}={IMAGE}", *mounts, *env]

    def start(self) -> Gateway:
        docker("volume", "create", f"--label={LABEL}={IMAGE}", self.volume)
        docker(
            "run",
            "--detach",
            f"--name={self.name}",
            f"--network={self.network.name}",
            "--tmpfs=/tmp",
            *self.options(),
            f"--stop-timeout={STOP_TIMEOUT}",
            "--health-interval=1s",  # the image's own check, asked every second
            IMAGE,
        )
        network = f'(index .NetworkSettings.Networks "{self.network.name}")'
        self.address = inspect(self.name, "{{" + network + ".IPAddress}}")
        return self

    def wait_healthy(self, within: float = 90) -> str:
        deadline = time.monotonic() + within
        status = ""
        while time.monotonic() < deadline:
            status = inspect(self.name, "{{.State.Status}} {{.State.Health.Status}}")
            if status in ("running healthy", "running unhealthy") or not status.startswith("run"):
                break
            time.sleep(0.5)
        return status

    def logs(self) -> str:
        r = docker("logs", self.name, check=False)
        return r.stdout + r.stderr

    def run_image(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A one-off command of the image on the same volume and config."""
        return docker("run", "--rm", *self.options(), IMAGE, *args, check=False)

    def remove(self) -> None:
        docker("rm", "--force", self.name, check=False)
        docker("volume", "rm", "--force", self.volume, check=False)


@pytest.fixture
def gateway(network: Network, soap: SoapServer, config_file: Path) -> Iterator[Gateway]:
    gw = Gateway(network, soap, config_file)
    try:
        yield gw.start()
    finally:
        gw.remove()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Status and JSON body."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_image_serves_read_only_as_non_root_and_stops_cleanly(
    gateway: Gateway, soap: SoapServer
) -> None:
    status = gateway.wait_healthy()
    assert status == "running healthy", f"{status}\n{gateway.logs()}"
    image_check = json.loads(
        docker("image", "inspect", "-f", "{{json .Config.Healthcheck}}", IMAGE).stdout
    )
    assert (
        json.loads(inspect(gateway.name, "{{json .Config.Healthcheck.Test}}"))
        == image_check["Test"]
    ), "the container runs the image's own HEALTHCHECK command"
    assert inspect(gateway.name, "{{.HostConfig.ReadonlyRootfs}}") == "true"

    # the service's process and what it wrote: not root
    proc = docker("exec", gateway.name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in proc.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {"10001"}, proc
    owner = docker("exec", gateway.name, "stat", "-c", "%u %a", f"{STATE}/audit.sqlite").stdout
    assert owner.split()[0] == "10001", owner

    # calls from the container network (this host, on the network's bridge)
    base = f"http://{gateway.address}:8080/api/v1"
    pid = demo_pid()
    code, body = get(f"{base}/fisher?personalId={pid}", LC2_HEADERS)
    assert code == 200, body
    assert body["data"], body
    assert {row["personalId"] for row in body["data"]} == {pid}, body
    soap_calls = soap.calls
    owner_pid = PEOPLE[0]["pid"]
    code, body = get(f"{base}/vessel-licence?personalId={owner_pid}", LC2_HEADERS)
    assert code == 200, body
    assert body["data"][0]["licenceNo"] == "PL-2566-000123", body
    assert soap.calls > soap_calls, "the answer came from the SOAP service"
    anonymous = {k: v for k, v in LC2_HEADERS.items() if k != "Authorization"}
    code, body = get(f"{base}/fisher?personalId={pid}", anonymous)
    assert (code, body["responseCode"]) == (400, "101"), body  # LC2's "no credential"

    # the admin listener answers the HEALTHCHECK inside and nobody outside
    assert refused(gateway.address, 9108)

    # answered calls right before SIGTERM are all in the audit after it
    burst = 20
    for _ in range(burst):
        assert get(f"{base}/fisher?personalId={pid}", LC2_HEADERS)[0] == 200
    started = time.monotonic()
    docker("stop", gateway.name, timeout=STOP_TIMEOUT + 30)  # SIGTERM, SIGKILL after the grace
    elapsed = time.monotonic() - started
    exit_code, killed = inspect(gateway.name, "{{.State.ExitCode}} {{.State.OOMKilled}}").split()
    assert exit_code == "0", f"exit {exit_code} after {elapsed:.1f} s\n{gateway.logs()}"
    assert elapsed < STOP_TIMEOUT, f"took {elapsed:.1f} s: docker's SIGKILL, not the gateway"
    assert killed == "false"

    verify = gateway.run_image("audit", "verify", "-c", CONFIG, "--json")
    assert verify.returncode in (0, 3), verify.stdout + verify.stderr  # 3: open segment only
    found = json.loads(verify.stdout)
    assert not [f for f in found["findings"] if f["severity"] == "error"], found
    search = gateway.run_image("audit", "search", "-c", CONFIG, "--format", "jsonl")
    assert search.returncode == 0, search.stdout + search.stderr
    records = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    answered = 2 + 1 + burst  # two data calls, the refused one, the burst
    assert len(records) == answered, records
    assert sum(chain["records"] for chain in found["chains"].values()) >= answered, found


def test_admin_listener_exposed_only_on_purpose(
    network: Network, soap: SoapServer, config_file: Path
) -> None:
    gw = Gateway(network, soap, config_file, "LC2_ADMIN_HOST=0.0.0.0")
    try:
        gw.start()
        assert gw.wait_healthy() == "running healthy", gw.logs()
        assert get(f"http://{gw.address}:9108/live")[0] == 200
    finally:
        gw.remove()


_CONTENTS = """
import importlib.metadata as md, json, os, shutil, sysconfig
site = sysconfig.get_paths()["purelib"]
print(json.dumps({
    "dists": {d.metadata["Name"]: d.version for d in md.distributions()},
    "tools": [t for t in ("gcc", "cc", "make", "pip", "pip3") if shutil.which(t)],
    "left": [p for p in ("/src", "/wheels", "/run/secrets", "/root/.cache", "/tmp/pip")
             if os.path.exists(p)],
    "tests": sorted(n for n in os.listdir(site) if n.split(".")[0] in ("test", "tests")),
}))
"""


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_holds_the_lock_and_nothing_else() -> None:
    """Exactly the lock's versions and the gateway; no compiler, pip, cache, test or secret."""
    r = docker(
        "run",
        "--rm",
        "--read-only",
        "--network=none",
        f"--label={LABEL}={IMAGE}",
        "--entrypoint=/opt/lc2-gateway/venv/bin/python",
        IMAGE,
        "-c",
        _CONTENTS,
    )
    found = json.loads(r.stdout)
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", LOCK.read_text(), re.MULTILINE)
    installed = {_dist(name): version for name, version in found["dists"].items()}
    assert installed.pop("lc2-gateway") == _project_version()
    assert installed == {_dist(name): version for name, version in pins}
    assert found["tools"] == [], "compilers or pip in the final stage"
    assert found["left"] == [], "build files, caches or the CA secret left in the image"
    assert found["tests"] == []
