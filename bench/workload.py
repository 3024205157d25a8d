"""What every target serves: the SQL, the gateway's YAML, the LC2 headers.

The floor runs the very same SQL text as the gateway (with driver
placeholders instead of ``:name``), so the two differ only in what the
gateway adds around the query: validation, grants, mapping, audit, metrics.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AUDIT_KEY_ENV",
    "DEMO_FISHER_SQL",
    "FISHER_SQL",
    "OFFICE",
    "OFFICER",
    "PASSWORD",
    "USERNAME",
    "VESSEL_SQL",
    "authorization",
    "demo_service",
    "gateway_config",
    "many_services_config",
    "numbered",
    "pid_forms",
    "qmarked",
]

USERNAME = "Linkage Service"
PASSWORD = "bench-password-2567"
OFFICE = "00023"
OFFICER = "1101700203450"  # a valid citizen ID (checksum)
AUDIT_KEY_ENV = "LC2_BENCH_AUDIT_KEY"
_REPO = Path(__file__).resolve().parent.parent
_PID_PARAMS = ("personalId", "personalId__dashed", "personalId__spaced", "personalId__padded")
_PID_IN = "(:personalId, :personalId__dashed, :personalId__spaced, :personalId__padded)"

FISHER_SQL = f"""
SELECT REG_NO, PID, FULLNAME, SEX, BIRTH_DATE, REG_DATE, HOUSE_NO, MOO,
       TAMBON_CODE, TAMBON_NAME, AMPHUR_CODE, AMPHUR_NAME, PROV_CODE, PROV_NAME, STATUS
  FROM fisher_reg
 WHERE PID IN {_PID_IN}
""".strip()

VESSEL_SQL = f"""
SELECT v.VESSEL_NO, v.OWNER_PID, v.VESSEL_NAME, v.VESSEL_TYPE, t.TYPE_NAME, v.GROSS_TON,
       v.LENGTH_M, v.REG_DATE, v.LICENCE_EXPIRE, v.HOUSE_NO, v.MOO, v.TAMBON_CODE,
       v.TAMBON_NAME, v.AMPHUR_CODE, v.AMPHUR_NAME, v.PROV_CODE, v.PROV_NAME, v.STATUS
  FROM vessel_reg v
  LEFT JOIN code_vessel_type t ON t.type_code = lpad(trim(v.vessel_type), 2, '0')
 WHERE v.OWNER_PID IN {_PID_IN}
 ORDER BY v.VESSEL_NO
""".strip()


def _demo_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (_REPO / "config" / "demo.yaml").read_text(encoding="utf-8")
    )
    return data


def _demo_query() -> str:
    query: str = _demo_yaml()["services"]["fisher"]["operation"]["query"]
    return query.strip()


DEMO_FISHER_SQL = _demo_query()


def numbered(sql: str) -> str:
    """``:personalId`` and its spellings as asyncpg's ``$1``..``$4``."""
    for i, name in sorted(enumerate(_PID_PARAMS, 1), key=lambda x: -len(x[1])):
        sql = sql.replace(f":{name}", f"${i}")
    return sql


def qmarked(sql: str) -> str:
    """The same for sqlite3 (each placeholder appears once, in order)."""
    for name in sorted(_PID_PARAMS, key=len, reverse=True):
        sql = sql.replace(f":{name}", "?")
    return sql


def pid_forms(pid: str) -> tuple[str, str, str, str]:
    """plain, dashed, spaced, padded: what the gateway binds for a citizen ID."""
    dashed = f"{pid[0]}-{pid[1:5]}-{pid[5:10]}-{pid[10:12]}-{pid[12]}"
    return pid, dashed, dashed.replace("-", " "), pid.ljust(17)


def authorization() -> str:
    return "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


_PID_PARAM = {"personalId": {"type": "citizen_id", "description": "citizen ID (13 digits)"}}
_ADDRESS = {
    "houseNo": {"column": "HOUSE_NO", "transform": ["cp874", "clean", "arabic_digits"]},
    "villageNo": {"column": "MOO", "transform": ["trim", {"null_if": ["0"]}, "int"]},
    "subdistrictCode": {"column": "TAMBON_CODE", "transform": ["trim"]},
    "subdistrictDesc": {"column": "TAMBON_NAME", "transform": ["cp874", "clean"]},
    "districtCode": {"column": "AMPHUR_CODE", "transform": ["trim"]},
    "districtDesc": {"column": "AMPHUR_NAME", "transform": ["cp874", "clean"]},
    "provinceCode": {"column": "PROV_CODE", "transform": ["trim"]},
    "provinceDesc": {"column": "PROV_NAME", "transform": ["cp874", "clean"]},
}
_FISHER_OUTPUT = {
    "registrationNo": "REG_NO",
    "personalId": {"column": "PID", "transform": ["pid"]},
    "titleDesc": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "title"}]},
    "firstName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "first"}]},
    "lastName": {"column": "FULLNAME", "transform": ["cp874", "clean", {"name": "last"}]},
    "genderCode": {"column": "SEX", "transform": ["trim"]},
    "genderDesc": {"column": "SEX", "transform": [{"lookup": "sex"}]},
    "dateOfBirth": {"column": "BIRTH_DATE", "transform": ["be_date"]},
    "registrationDate": {"column": "REG_DATE", "transform": ["be_date"]},
    "statusCode": {"column": "STATUS", "transform": ["trim"]},
    "statusDesc": {"column": "STATUS", "transform": [{"lookup": "status"}]},
    "address": {"fields": _ADDRESS},
}
_VESSEL_OUTPUT = {
    "vesselNo": "VESSEL_NO",
    "ownerPersonalId": {"column": "OWNER_PID", "transform": ["pid"]},
    "vesselName": {"column": "VESSEL_NAME", "transform": ["cp874", "clean"]},
    "vesselTypeCode": {"column": "VESSEL_TYPE", "transform": ["trim", {"zfill": 2}]},
    "vesselTypeDesc": {"column": "TYPE_NAME", "transform": ["cp874", "clean"]},
    "grossTonnage": {"column": "GROSS_TON", "transform": ["trim", {"decimal": {"places": 2}}]},
    "lengthMetres": {"column": "LENGTH_M", "transform": ["float"]},
    "registrationDate": {"column": "REG_DATE", "transform": ["be_date"]},
    "licenceExpiry": {"column": "LICENCE_EXPIRE", "transform": ["be_date"]},
    "statusCode": {"column": "STATUS", "transform": ["trim"]},
    "statusDesc": {"column": "STATUS", "transform": [{"lookup": "status"}]},
    "homePort": {"fields": _ADDRESS},
}


def _pg_service(backend: str, sql: str, output: Mapping[str, Any], max_rows: int) -> dict[str, Any]:
    return {
        "backend": backend,
        "params": copy.deepcopy(_PID_PARAM),
        "operation": {"query": sql, "max_rows": max_rows},
        "output": copy.deepcopy(dict(output)),
        # every request gets the generated rows, as before match on the key parameter became
        # the default: the sandbox scenario measures the same work across rounds
        "sandbox": {"generate": 3, "match": {}},
    }


def demo_service(backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo's ``fisher`` service on ``backend``, and the demo's lookups."""
    demo = _demo_yaml()
    svc: dict[str, Any] = copy.deepcopy(demo["services"]["fisher"])
    svc["backend"] = backend
    svc["path"] = "demo-fisher"
    lookups: dict[str, Any] = demo["lookups"]
    return svc, lookups


def _base(
    *, port: int, admin_port: int, audit: Mapping[str, Any], password_hash: str
) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"enabled": True, "host": "127.0.0.1", "port": admin_port},
        "logging": {"level": "WARNING", "access": True},
        "lc2": {"user_agent_prefix": "Linkage Center 2/"},
        "consumers": {
            "lc2": {"username": USERNAME, "password_hash": password_hash, "services": ["*"]}
        },
        "audit": dict(audit),
    }


def gateway_config(
    *,
    port: int,
    admin_port: int,
    pg_dsn: str,
    sqlite_path: Path,
    audit: Mapping[str, Any],
    password_hash: str,
    pool_size: int,
) -> dict[str, Any]:
    """Validation, mapping, durable audit and metrics on; logs at WARNING."""
    demo_svc, demo_lookups = demo_service("demo")
    cfg = _base(port=port, admin_port=admin_port, audit=audit, password_hash=password_hash)
    cfg["lookups"] = {
        **demo_lookups,
        "sex": {"1": "ชาย", "2": "หญิง"},
        "status": {"A": "ใช้งาน", "C": "ยกเลิก"},
    }
    cfg["backends"] = {
        "registry": {
            "type": "postgresql",
            "dsn": pg_dsn,
            "pool_size": pool_size,
            "query_timeout": 5,
            "health": {"interval": 10, "timeout": 2},
        },
        "demo": {
            "type": "sqlite",
            "path": str(sqlite_path),
            "pool_size": 4,
            "query_timeout": 5,
            "health": {"interval": 10, "timeout": 2},
        },
    }
    cfg["services"] = {
        "fisher": _pg_service("registry", FISHER_SQL, _FISHER_OUTPUT, 10),
        "vessel": _pg_service("registry", VESSEL_SQL, _VESSEL_OUTPUT, 100),
        "demoFisher": demo_svc,
    }
    return cfg


def many_services_config(
    count: int,
    *,
    port: int,
    admin_port: int,
    pg_dsn: str,
    audit: Mapping[str, Any],
    password_hash: str,
) -> dict[str, Any]:
    """``count`` services (fisher- and vessel-shaped in turn) on two PostgreSQL backends."""
    cfg = _base(port=port, admin_port=admin_port, audit=audit, password_hash=password_hash)
    cfg["lookups"] = {"sex": {"1": "ชาย", "2": "หญิง"}, "status": {"A": "ใช้งาน", "C": "ยกเลิก"}}
    cfg["backends"] = {
        f"db{b}": {"type": "postgresql", "dsn": pg_dsn, "pool_size": 4} for b in range(2)
    }
    services: dict[str, Any] = {}
    for i in range(count):
        sql, output = (FISHER_SQL, _FISHER_OUTPUT) if i % 2 == 0 else (VESSEL_SQL, _VESSEL_OUTPUT)
        services[f"service{i:02d}"] = _pg_service(f"db{i % 2}", sql, output, 100)
    cfg["services"] = services
    return cfg
