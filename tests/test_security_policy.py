"""What each consumer may get: grants before any backend call, field allow lists and masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.app import build_app, build_runtime
from gateway.config.loader import ConfigError
from gateway.config.models import FieldConfig
from gateway.normalise import compile_mapping
from gateway.policy import MASKS, compile_policy
from tests.support import (
    PASSWORD_HASH,
    PEOPLE,
    SQLITE_QUERY,
    Client,
    MakeClient,
    audit_rows,
    base_config,
    basic,
    fisher_service,
    lc2_headers,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)

PID = PEOPLE[0]["pid"]  # นายสมชาย ใจดี, born 1984-02-29, หมู่ 3


def _consumer(user: str, **extra: Any) -> dict[str, Any]:
    return {"username": user, "password_hash": PASSWORD_HASH, **extra}


def _config(tmp_path: Path, consumers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    services = {
        "fisher": fisher_service("legacy", SQLITE_QUERY),
        "copy": {**fisher_service("legacy", SQLITE_QUERY), "path": "fisher-copy"},
    }
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, services)
    cfg["consumers"] = consumers
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    cfg.update(extra)
    return cfg


async def _rows(client: Client, user: str, path: str = "/api/v1/fisher") -> list[dict[str, Any]]:
    resp = await client.get(
        path, params={"personalId": PID}, headers=lc2_headers(Authorization=basic(user=user))
    )
    assert resp.status == 200, await resp.text()
    rows: list[dict[str, Any]] = (await resp.json())["data"]
    return rows


async def test_each_consumer_gets_only_the_fields_its_approval_covers(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    consumers = {
        "full": _consumer("full"),
        "masked": _consumer(
            "masked",
            fields={
                "fisher": {
                    "mask": {
                        "personalId": "citizen_id",
                        "dateOfBirth": "year",
                        "firstName": "initial",
                        "lastName": "null",
                    }
                }
            },
        ),
        "narrow": _consumer(
            "narrow", fields={"fisher": {"allow": ["personalId", "address.villageNo"]}}
        ),
    }
    client = await aiohttp_client(
        build_app(build_runtime(settings_from(_config(tmp_path, consumers))))
    )

    full = (await _rows(client, "full"))[0]
    assert full["personalId"] == PID and full["firstName"] == "สมชาย"
    assert full["dateOfBirth"] == "1984-02-29"

    masked = (await _rows(client, "masked"))[0]
    assert masked["personalId"] == f"{PID[0]}-{PID[1:5]}-xxxxx-xx-{PID[12]}"
    assert masked["dateOfBirth"] == "1984"
    assert masked["firstName"] == "ส."
    assert masked["lastName"] is None
    assert masked["titleDesc"] == "นาย" and masked["address"] == {"villageNo": 3}
    raw = await (
        await client.get(
            "/api/v1/fisher",
            params={"personalId": PID},
            headers=lc2_headers(Authorization=basic(user="masked")),
        )
    ).read()
    assert PID.encode() not in raw and "สมชาย".encode() not in raw and b"02-29" not in raw

    narrow = (await _rows(client, "narrow"))[0]
    assert narrow == {"personalId": PID, "address": {"villageNo": 3}}

    # the policy holds on the sandbox too, and only for the service it names
    for row in await _rows(client, "masked", "/api/v1/fisher/sandbox"):
        assert "xxxxx" in row["personalId"] and row["lastName"] is None
    assert (await _rows(client, "masked", "/api/v1/fisher-copy"))[0]["personalId"] == PID


async def test_ungranted_service_or_office_is_refused_before_the_backend_and_audited(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    consumers = {"lc2": _consumer("Linkage Service", services=["copy"], offices=["00023"])}
    settings = settings_from(_config(tmp_path, consumers))
    client = await aiohttp_client(build_app(build_runtime(settings)))
    (tmp_path / "legacy.sqlite").unlink()  # a backend call would now answer 503, not 403
    denied = await client.get("/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers())
    body = await denied.json()
    assert denied.status == 403 and body["responseCode"] == "202"
    other_office = await client.get(
        "/api/v1/fisher-copy",
        params={"personalId": PID},
        headers=lc2_headers(**{"X-Office-Request": "99999"}),
    )
    assert other_office.status == 403
    sandbox = await client.get(
        "/api/v1/fisher/sandbox", params={"personalId": PID}, headers=lc2_headers()
    )
    assert sandbox.status == 403  # no grant: not even the test rows
    granted = await client.get(
        "/api/v1/fisher-copy", params={"personalId": PID}, headers=lc2_headers()
    )
    assert granted.status == 503  # the grant holds; the (deleted) backend is what fails
    await client.close()
    rows = audit_rows(settings.audit.path)
    assert [(r["status"], r["code"], r["service"]) for r in rows] == [
        (403, "202", "fisher"),
        (403, "202", "copy"),
        (403, "202", "fisher"),
        (503, "301", "copy"),
    ]
    assert rows[0]["consumer"] == "lc2" and rows[0]["subject_hash"]
    assert "no grant for service 'fisher'" in rows[0]["error"]


def test_policies_are_checked_against_the_mapping_at_load(tmp_path: Path) -> None:
    consumers = {
        "lc2": _consumer(
            "Linkage Service",
            fields={
                "fisher": {
                    "allow": ["personalId", "nickname", "address.road"],
                    "mask": {"address": "year", "firstName": "initial"},
                },
                "nothing": {"allow": []},
            },
        )
    }
    with pytest.raises(ConfigError) as err:
        settings_from(_config(tmp_path, consumers))
    got = {".".join(map(str, p.path)): p.message for p in err.value.problems}
    assert got.keys() == {
        "consumers.lc2.fields.nothing",
        "consumers.lc2.fields.fisher.allow.1",
    }
    assert "no field 'nickname'" in got["consumers.lc2.fields.fisher.allow.1"]
    consumers["lc2"]["fields"] = {"fisher": {"mask": {"address": "year"}}}
    with pytest.raises(ConfigError) as err:
        settings_from(_config(tmp_path, consumers))
    assert "only the null mask" in err.value.problems[0].message


def test_masks_keep_the_shape_and_never_leak_what_they_cannot_read() -> None:
    cid, year, year_month, initial = (
        MASKS[k] for k in ("citizen_id", "year", "year_month", "initial")
    )
    assert cid("1740100234561") == "1-7401-xxxxx-xx-1"
    assert cid("1-7401-00234-56-1") == "1-7401-xxxxx-xx-1"
    assert cid("1740100234562") is None  # not a citizen ID: nothing of it is shown
    assert cid(1740100234561) is None and cid(None) is None
    assert year("1984-02-29") == "1984" and year("1969-03") == "1969" and year(25270229) == 25270000
    assert year_month("1984-02-29") == "1984-02" and year_month(25270229) == 25270200
    assert year_month("1969") is None and year("29/02/1984") is None and year(True) is None
    assert initial("สมชาย") == "ส." and initial("เกษม") == "ก." and initial("Somchai") == "S."
    assert initial("  ") is None and initial(3) is None

    mapper = compile_mapping(
        {
            "a": FieldConfig.model_validate({"fields": {"b": "B", "c": "C"}}),
            "d": FieldConfig(column="D"),
        },
        lookups={},
        titles=[],
    )
    policy = compile_policy(mapper, allow=["a", "a.b"], mask={"a.c": "null"}, path=())
    # a masked key inside an object allowed whole: the object is walked, everything else kept
    assert policy.apply([{"a": {"b": 1, "c": 2}, "d": 3}]) == [{"a": {"b": 1, "c": None}}]
    # an unexpected shape (a backend gave a scalar where an object was mapped) passes unopened
    assert policy.apply([{"a": "x", "d": 3}]) == [{"a": "x"}]
