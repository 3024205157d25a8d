"""Oracle connection settings: the YAML options and the pool parameters built from them."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import oracledb
from pydantic import Field, SecretStr, field_validator, model_validator

from adapters.oracle.text import DB_CHARSETS
from gateway.adapter import BackendLimits, OptionsModel

__all__ = ["OracleOptions", "pool_params"]


class OracleOptions(OptionsModel):
    dsn: str = Field(
        min_length=1,
        description="EZConnect (host:1521/service, tcps://host:2484/service), a descriptor, "
        "or a TNS alias from config_dir; no user or password in it",
    )
    user: str = Field(min_length=1)
    password: SecretStr | None = Field(default=None, description="from ${ENV}")
    config_dir: Path | None = Field(
        default=None, description="directory of tnsnames.ora (for TNS aliases)"
    )
    wallet_location: Path | None = Field(
        default=None, description="directory of ewallet.pem for TLS (tcps)"
    )
    wallet_password: SecretStr | None = Field(
        default=None, description="password of an encrypted ewallet.pem, from ${ENV}"
    )
    ssl_server_dn_match: bool = Field(
        default=True, description="check the server certificate's name (tcps)"
    )
    ssl_server_cert_dn: str | None = Field(
        default=None, description="expected server certificate DN, if not the host name"
    )
    connect_timeout: float = Field(default=5, gt=0, le=300, description="seconds per TCP connect")
    expire_time: int = Field(
        default=2, ge=0, le=1440, description="minutes between keepalive probes (0: off)"
    )
    max_idle_time: int = Field(
        default=300, ge=0, description="seconds an idle pooled session is kept (0: forever)"
    )
    ping_interval: int = Field(
        default=60, ge=-1, description="seconds idle before a session is pinged on acquire"
    )
    statement_cache_size: int = Field(default=20, ge=0)
    text_encoding: str | None = Field(
        default=None,
        description="real encoding of CHAR/VARCHAR2/CLOB bytes when NLS_CHARACTERSET "
        "does not describe them (cp874 for TIS-620 kept in US7ASCII/WE8ISO8859P1)",
    )
    database_charset: str | None = Field(
        default=None,
        description="NLS_CHARACTERSET; read from the database when text_encoding is set",
    )
    probe_query: str = Field(default="SELECT 1 FROM DUAL", min_length=1)

    @field_validator("dsn")
    @classmethod
    def _dsn_without_credentials(cls, dsn: str) -> str:
        head = dsn.split("?", 1)[0]
        if "@" in head and "(" not in head:
            raise ValueError(
                "dsn must not contain user/password@; use the `user` and `password` options"
            )
        if re.search(r"(?i)\b(password|wallet_password)\s*=", dsn):
            raise ValueError("dsn must not contain a password; use the `password` option")
        return dsn

    @field_validator("text_encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return codecs.lookup(value).name
            except LookupError:
                raise ValueError(f"unknown codec {value!r}") from None
        return value

    @field_validator("database_charset")
    @classmethod
    def _known_charset(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in DB_CHARSETS:
            raise ValueError(
                f"unsupported NLS_CHARACTERSET {value!r} (known: {sorted(DB_CHARSETS)})"
            )
        return value.upper() if value else None

    @model_validator(mode="after")
    def _wallet_password_needs_wallet(self) -> OracleOptions:
        if self.wallet_password is not None and self.wallet_location is None:
            raise ValueError("wallet_password without wallet_location")
        return self


def pool_params(options: OracleOptions, limits: BackendLimits) -> oracledb.PoolParams:
    """Everything needed to connect, with ``dsn`` resolved (EZConnect, alias, descriptor).

    Resolving at open means a TNS alias missing from tnsnames.ora shows up in
    health with its name instead of as a vague connect failure.
    """
    secret = options.wallet_password
    params: oracledb.PoolParams = oracledb.PoolParams(
        # min=0: no session is created until the first call needs one
        min=0,
        max=limits.pool_size,
        increment=1,
        getmode=oracledb.POOL_GETMODE_TIMEDWAIT,
        wait_timeout=int(limits.acquire_timeout * 1000),
        timeout=options.max_idle_time,
        ping_interval=options.ping_interval,
        user=options.user,
        password=options.password.get_secret_value() if options.password else None,
        config_dir=str(options.config_dir) if options.config_dir else None,
        wallet_location=str(options.wallet_location) if options.wallet_location else None,
        wallet_password=secret.get_secret_value() if secret else None,
        ssl_server_dn_match=options.ssl_server_dn_match,
        ssl_server_cert_dn=options.ssl_server_cert_dn,
        tcp_connect_timeout=options.connect_timeout,
        expire_time=options.expire_time,
        retry_count=0,  # the gateway's guard decides about retries
        stmtcachesize=options.statement_cache_size,
        program="lc2-gateway",
    )
    params.parse_connect_string(options.dsn)
    return params
