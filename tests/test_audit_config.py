"""The `audit:` block: validated at start-up, secrets from the environment, every key documented."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.audit.config import AuditConfig, default_instance
from gateway.config.loader import ConfigError
from tests.audit_support import write_config
from tests.support import (
    SQLITE_QUERY,
    base_config,
    fisher_service,
    make_sqlite_db,
    settings_from,
    sqlite_backend,
)

ROOT = Path(__file__).resolve().parent.parent


def _audit(tmp_path: Path, env: dict[str, str] | None = None, **audit: Any) -> Any:
    db = tmp_path / "legacy.sqlite"
    if not db.exists():
        make_sqlite_db(db)
    services = {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    cfg = base_config(tmp_path, {"legacy": sqlite_backend(db)}, services)
    cfg["audit"].update(audit)
    return settings_from(cfg, env=env, base_dir=tmp_path).audit


@pytest.mark.parametrize(
    ("audit", "message"),
    [
        ({"fail_close": True}, "fail_close"),
        ({"seal_key": "${SEAL}", "seal_key_file": "k.pem"}, "at most one of seal_key"),
        ({"store": "postgresql"}, "needs a postgresql: block"),
        (
            {"store": "postgresql", "postgresql": {"dsn": "postgresql://u:pw@db/a"}},
            "not in the DSN",
        ),
        ({"postgresql": {"dsn": "mysql://db/a"}}, "postgresql://"),
        ({"timezone": "Asia/Bangkokk"}, "unknown time zone"),
        ({"instance": "gw 1"}, "1-64 characters"),
        ({"seal_period": "week"}, "seal_period"),
        ({"report": {"office_hours": {"start": "17:00", "end": "08:30"}}}, "start must be before"),
        ({"report": {"office_hours": {"weekdays": [0]}}}, "ISO weekdays"),
        ({"report": {"holidays": ["nowhere.yaml"]}}, "audit.report.holidays.0"),
        ({"seal_key": "${SEAL}"}, "64 hexadecimal characters"),
    ],
)
def test_a_wrong_audit_block_is_refused_with_its_place(
    tmp_path: Path, audit: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        _audit(tmp_path, env={"SEAL": "not-hex"}, **audit)
    assert message in str(exc.value)


def test_secrets_must_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _audit(
            tmp_path,
            seal_key="11" * 32,
            store="postgresql",
            postgresql={"dsn": "postgresql://u@db/a", "password": "literal"},
        )
    text = str(exc.value)
    assert "audit.seal_key: a secret must come from the environment" in text
    assert "audit.postgresql.password: a secret must come from the environment" in text
    a = _audit(tmp_path, env={"SEAL": "22" * 32}, seal_key="${SEAL}")
    assert a.seal_seed == bytes.fromhex("22" * 32) and a.seal_key_path is None


def test_keys_are_created_0600_by_serve_and_never_by_check(tmp_path: Path) -> None:
    from gateway.config.build import load_settings

    config = write_config(tmp_path)
    seal = tmp_path / "audit-seal.key"
    checked = load_settings(config, create_key_file=False)
    assert not seal.exists() and checked.audit.seal_seed is None
    served = load_settings(config, create_key_file=True)
    assert stat.S_IMODE(seal.stat().st_mode) == 0o600
    assert "BEGIN PRIVATE KEY" in seal.read_text()
    assert served.audit.seal_seed is not None
    again = load_settings(config, create_key_file=True)
    assert again.audit.seal_seed == served.audit.seal_seed  # created once, then kept


def test_defaults(tmp_path: Path) -> None:
    a = _audit(tmp_path)
    assert a.fail_closed and a.store == "sqlite" and a.seal_period == "day"
    assert a.timezone == "Asia/Bangkok" and a.instance == default_instance()
    assert a.archive_dir == tmp_path / "audit-archive"
    assert a.report is not None and a.report.office_start == 8 * 60 + 30


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        out.append(prefix + key)
        ann = field.annotation
        for inner in (*getattr(ann, "__args__", ()), ann):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                out += _keys(inner, prefix + key + ".")
    return out


def test_every_audit_key_is_documented() -> None:
    doc = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    for key in _keys(AuditConfig):
        leaf = key.rsplit(".", 1)[-1]
        assert re.search(rf"`{re.escape(leaf)}`", doc), f"audit.{key} is not in docs/audit.md"
