"""The worked example ``config/vessels.yaml``: it builds, and it serves both services.

It is run against the test doubles of both systems (the spyne licence service
with WS-Security PasswordDigest, and the legacy TIS-620 XML endpoint), exactly
as its header tells an operator to try it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.app import build_app, build_runtime
from gateway.config.build import build_settings, load_settings
from gateway.config.loader import load_yaml
from tests.http_upstream import running_http_upstream
from tests.soap_server import FAULT_BAD_REQUEST, FAULT_NO_RECORD, running_soap_server
from tests.support import PEOPLE, MakeClient, basic, lc2_headers

ROOT = Path(__file__).resolve().parent.parent
OWNER = PEOPLE[0]["pid"]

VESSELS = ROOT / "config" / "vessels.yaml"
VESSELS_ENV = {"VESSELS_SOAP_PASSWORD": "vessel-pass", "VESSELS_AUDIT_KEY": "k" * 32}


def test_vessels_example_builds() -> None:
    settings = load_settings(VESSELS, env=VESSELS_ENV, create_key_file=False)
    assert set(settings.services) == {"vesselLicence", "vesselMovements"}
    assert {b.type for b in settings.backends.values()} == {"soap", "http"}


async def test_vessels_example_serves(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    with (
        running_soap_server(users={"lc2gw": VESSELS_ENV["VESSELS_SOAP_PASSWORD"]}) as srv,
        running_http_upstream() as up,
    ):
        env = {**VESSELS_ENV, "VESSELS_SOAP_URL": srv.url, "PIPO_URL": up.url}
        loaded = load_yaml(VESSELS, env)
        # nothing of the run may land beside the example, in the source tree
        loaded.data["audit"]["path"] = str(tmp_path / "audit.sqlite")
        loaded.data["limits"] = {"store": str(tmp_path / "quota.sqlite")}
        client = await aiohttp_client(build_app(build_runtime(build_settings(loaded))))

        async def get(path: str, pid: str, **headers: str) -> tuple[int, Any]:
            resp = await client.get(
                f"/api/v1/{path}",
                params={"personalId": pid},
                headers=lc2_headers(Authorization=basic(password="demo-password"), **headers),
            )
            return resp.status, await resp.json()

        status, body = await get("vessel-licence", OWNER)
        assert status == 200, body
        first = body["data"][0]
        assert (
            first["licenceTypeDesc"] == "ประมงพาณิชย์ อวนลาก" and first["issueDate"] == "2023-04-01"
        )
        assert first["owner"] == {
            "personalId": OWNER,
            "titleDesc": "นาย",
            "firstName": "สมชาย",
            "lastName": "ใจดี",
        }
        assert first["vessel"]["grossTonnage"] == 28
        assert first["vessel"]["homePortProvinceDesc"] == "สมุทรสาคร"
        assert (await get("vessel-licence", FAULT_NO_RECORD))[1]["data"] == []
        status, body = await get("vessel-licence", FAULT_BAD_REQUEST)
        assert (status, body["responseCode"]) == (400, "306")
        # the sandbox answers its own test owner's rows, and no one else's
        status, body = await get("vessel-licence", "1101700203450", **{"X-Use-Sandbox": "1"})
        assert [r["licenceNo"] for r in body["data"]] == ["PL-TEST-000001", "PL-TEST-000002"]
        status, body = await get("vessel-licence", OWNER, **{"X-Use-Sandbox": "1"})
        assert (status, body["data"]) == (200, [])

        status, body = await get("vessel-movements", OWNER)
        assert status == 200, body
        assert [(m["sequence"], m["directionDesc"], m["movementDate"]) for m in body["data"]] == [
            (1, "แจ้งออกท่า", "2024-01-15"),
            (2, "แจ้งเข้าท่า", "2024-01-19"),
        ]
        assert body["data"][0]["vesselName"] == "ศรีสมุทร 1"
        assert (await get("vessel-movements", PEOPLE[1]["pid"]))[1]["data"] == []
        await client.close()
