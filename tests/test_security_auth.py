"""Who may call: credentials, rotation, brute force, API keys, addresses, proxies, mutual TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import ipaddress
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import gateway.auth
from gateway.app import build_app, build_runtime
from gateway.auth import hash_password, verify_password
from gateway.cli import main as cli_main
from gateway.config.loader import ConfigError
from gateway.security.apikey import hash_api_key, new_api_key
from gateway.security.network import Networks, client_address, parse_address
from tests.live import live_config, live_gateway
from tests.support import (
    PASSWORD_HASH,
    PEOPLE,
    SQLITE_QUERY,
    TEST_ENV,
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

PID = PEOPLE[0]["pid"]


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    db = make_sqlite_db(tmp_path / "legacy.sqlite")
    cfg = base_config(
        tmp_path, {"legacy": sqlite_backend(db)}, {"fisher": fisher_service("legacy", SQLITE_QUERY)}
    )
    cfg["limits"] = {"store": str(tmp_path / "quota.sqlite")}
    for key, value in extra.items():
        cfg[key] = value
    return cfg


async def _client(aiohttp_client: MakeClient, cfg: dict[str, Any]) -> tuple[Client, Any]:
    settings = settings_from(cfg)
    rt = build_runtime(settings)
    return await aiohttp_client(build_app(rt)), rt


async def _get(client: Client, **headers: str | None) -> tuple[int, str]:
    resp = await client.get(
        "/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers(**headers)
    )
    body = await resp.json()
    return resp.status, body["responseCode"]


# --- passwords and their rotation ------------------------------------------------------------


async def test_two_hashes_are_valid_during_rotation_then_the_old_one_is_retired(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    new_password = "the-new-password-5678"
    new_hash = hash_password(new_password, n=2**10)
    cfg = _config(tmp_path)
    cfg["consumers"]["lc2"]["password_hash"] = [PASSWORD_HASH, new_hash]
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    settings = settings_from(cfg, base_dir=tmp_path)
    rt = build_runtime(settings)
    client = await aiohttp_client(build_app(rt))
    assert await _get(client) == (200, "000")
    assert await _get(client, Authorization=basic(password=new_password)) == (200, "000")

    # LC2 switched to the new password: the old hash leaves the config, no restart
    cfg["consumers"]["lc2"]["password_hash"] = new_hash
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in TEST_ENV.items():
            mp.setenv(k, v)
        ok, message = await rt.reload(path)
    assert ok, message
    assert await _get(client) == (401, "103")
    assert await _get(client, Authorization=basic(password=new_password)) == (200, "000")


async def test_callers_arriving_together_share_one_verification(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LC2 opening 32 connections at once after a start costs one scrypt, not 32."""
    calls: list[int] = []
    real = gateway.auth._verify_any

    def counting(password: str, hashes: Sequence[str]) -> bool:
        calls.append(1)
        time.sleep(0.05)  # a verification long enough for the others to arrive meanwhile
        return real(password, hashes)

    monkeypatch.setattr(gateway.auth, "_verify_any", counting)
    client = await aiohttp_client(build_app(build_runtime(settings_from(_config(tmp_path)))))
    answers = await asyncio.gather(*(_get(client) for _ in range(32)))
    assert answers == [(200, "000")] * 32
    assert len(calls) == 1
    # a wrong password shared by concurrent callers: one verification, every caller refused
    wrong = basic(password="wrong")
    bad = await asyncio.gather(*(_get(client, Authorization=wrong) for _ in range(8)))
    assert bad == [(401, "103")] * 8
    assert len(calls) == 2


async def test_passwd_makes_a_hash_the_gateway_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    monkeypatch.setattr("sys.stdout", out)
    assert cli_main(["passwd", "--stdin"]) == 0
    stored = out.getvalue().strip()
    assert stored.startswith("scrypt$16384$8$1$") and "a-long-enough" not in stored
    assert await asyncio.to_thread(verify_password, "a-long-enough-password", stored)
    assert not await asyncio.to_thread(verify_password, "a-long-enough-passworD", stored)


# --- brute force -----------------------------------------------------------------------------


def _count_verifications(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[int]:
    """Count password checks; ``delay`` makes each long enough for others to arrive meanwhile."""
    calls: list[int] = []
    real = gateway.auth._verify_any

    def counting(password: str, hashes: Sequence[str]) -> bool:
        calls.append(1)
        time.sleep(delay)
        return real(password, hashes)

    monkeypatch.setattr(gateway.auth, "_verify_any", counting)
    return calls


async def test_brute_force_from_one_address_is_locked_out_cheaply_and_audited(
    tmp_path: Path, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"per_address": 5, "per_username": 1000, "window": 60, "lockout": 1.5}
    cfg = _config(tmp_path, security={"auth_failures": limits})
    client, rt = await _client(aiohttp_client, cfg)
    verified = _count_verifications(monkeypatch)

    answers = [await _get(client, Authorization=basic(password=f"guess-{i}")) for i in range(5)]
    assert answers == [(401, "103")] * 5
    assert len(verified) == 5

    # locked: every call from this address, the right password too, is refused unverified
    for authorization in (basic(password="guess-6"), basic(), basic(user="someone")):
        resp = await client.get(
            "/api/v1/fisher",
            params={"personalId": PID},
            headers=lc2_headers(Authorization=authorization),
        )
        body = await resp.json()
        assert resp.status == 429 and body["responseCode"] == "105"
        assert 1 <= int(resp.headers["Retry-After"]) <= 2
        assert set(body) == {"responseCode", "message", "messageTh", "requestId", "error"}
    assert len(verified) == 5, "a locked-out caller must cost no password hash"

    await asyncio.sleep(1.6)  # the lock-out ends by itself
    assert await _get(client) == (200, "000")

    text = _metrics_text(rt.metrics.registry)
    assert 'lc2_gateway_auth_lockouts_total{scope="address"} 1.0' in text
    assert 'lc2_gateway_auth_locked{scope="address"} 0.0' in text  # over by now
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    codes = [(r["status"], r["code"]) for r in rows]
    assert codes == [(401, "103")] * 5 + [(429, "105")] * 3 + [(200, "000")]
    assert all(r["client_ip"] == "127.0.0.1" for r in rows)
    # why a sign-in failed is in the audit, never in the answer
    assert rows[0]["error"] == "wrong password for 'Linkage Service'"
    assert "unknown username" not in str(rows)  # no unknown username was tried before the lock


def _metrics_text(registry: Any) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


async def test_distributed_guessing_locks_the_username_except_where_it_signs_in_from(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    security = {
        "trusted_proxies": ["127.0.0.1/32"],  # the test client plays a proxy naming each caller
        "auth_failures": {"per_address": 100, "per_username": 4, "window": 60, "lockout": 60},
    }
    client, _ = await _client(aiohttp_client, _config(tmp_path, security=security))
    lc2_proxy = {"X-Forwarded-For": "203.0.113.10"}
    assert await _get(client, **lc2_proxy) == (200, "000")  # LC2 signs in from its proxy

    for i in range(4):  # one guess each from four addresses: no address limit is reached
        got = await _get(
            client,
            Authorization=basic(password=f"g{i}"),
            **{"X-Forwarded-For": f"198.51.100.{i + 1}"},
        )
        assert got == (401, "103")
    # the username is locked now, for addresses it never signed in from, right password or not
    assert await _get(client, **{"X-Forwarded-For": "198.51.100.77"}) == (429, "105")
    # LC2 itself is not locked out by the attack
    assert await _get(client, **lc2_proxy) == (200, "000")

    # unknown usernames are locked the same way: a lock-out tells nothing about which exist
    for i in range(4):
        got = await _get(
            client,
            Authorization=basic(user="nobody", password=str(i)),
            **{"X-Forwarded-For": f"198.51.100.{i + 10}"},
        )
        assert got == (401, "103")
    got = await _get(
        client, Authorization=basic(user="nobody"), **{"X-Forwarded-For": "198.51.100.99"}
    )
    assert got == (429, "105")


# --- API keys --------------------------------------------------------------------------------


async def test_api_keys_alone_or_as_a_second_factor(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    partner_key, lc2_key = new_api_key(), new_api_key()
    consumers = {
        "lc2": {
            "username": "Linkage Service",
            "password_hash": PASSWORD_HASH,
            "api_keys": [hash_api_key(lc2_key)],
        },
        "partner": {"username": "partner", "api_keys": [hash_api_key(partner_key)]},
    }
    cfg = _config(tmp_path, consumers=consumers, security={"api_key_header": "X-Partner-Key"})
    client, _ = await _client(aiohttp_client, cfg)
    no_basic: dict[str, str | None] = {"Authorization": None}
    assert await _get(client, **no_basic, **{"X-Partner-Key": partner_key}) == (200, "000")
    assert await _get(client, **no_basic, **{"X-Partner-Key": partner_key + "x"}) == (401, "103")
    assert await _get(client, **no_basic) == (400, "101")  # no credential at all
    # lc2 has both: both are needed
    assert await _get(client) == (401, "103")
    assert await _get(client, **{"X-Partner-Key": lc2_key}) == (200, "000")
    assert await _get(client, **no_basic, **{"X-Partner-Key": lc2_key}) == (401, "103")
    assert await _get(client, **{"X-Partner-Key": partner_key}) == (401, "103")
    await client.close()
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert [r["consumer"] for r in rows if r["status"] == 200] == ["partner", "lc2"]
    assert partner_key not in str(rows) and lc2_key not in str(rows)


def test_api_keys_and_pins_are_checked_at_load(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg["consumers"]["lc2"]["api_keys"] = ["not-a-hash"]
    cfg["consumers"]["lc2"]["client_cert_sha256"] = ["ab" * 32]
    cfg["consumers"]["lc2"]["allow_from"] = ["10.0.0.0/8", "nope"]
    with pytest.raises(ConfigError) as err:
        settings_from(cfg)
    where = {".".join(map(str, p.path)): p.message for p in err.value.problems}
    assert "consumers.lc2.allow_from" in where
    cfg["consumers"]["lc2"]["allow_from"] = ["10.0.0.0/8"]
    with pytest.raises(ConfigError) as err:
        settings_from(cfg)
    where = {".".join(map(str, p.path)): p.message for p in err.value.problems}
    assert "sha256" in where["consumers.lc2.api_keys.0"]
    assert "mutual TLS" in where["consumers.lc2.client_cert_sha256"]


# --- addresses, and proxies ------------------------------------------------------------------


async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    lc2_net = {"allow_from": ["203.0.113.0/24"]}
    (tmp_path / "a").mkdir()
    client, _ = await _client(aiohttp_client, _config(tmp_path / "a", security=lc2_net))
    # the peer is 127.0.0.1; naming an allowed address in the header changes nothing
    assert await _get(client, **{"X-Forwarded-For": "203.0.113.5"}) == (403, "106")
    health = await client.get("/health", headers={"X-Forwarded-For": "203.0.113.5"})
    assert health.status == 403
    await client.close()
    rows = audit_rows(tmp_path / "a" / "audit.sqlite")
    assert [(r["status"], r["code"], r["client_ip"]) for r in rows] == [
        (403, "106", "127.0.0.1")
    ] * 2

    (tmp_path / "b").mkdir()
    proxied = {**lc2_net, "trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"]}
    client, _ = await _client(aiohttp_client, _config(tmp_path / "b", security=proxied))
    cases = [
        ("203.0.113.5", 200),
        ("203.0.113.5, 10.1.1.1", 200),  # through a second trusted proxy
        ("198.51.100.9, 203.0.113.5", 200),  # what the caller wrote on the left is ignored
        ("203.0.113.5, 198.51.100.9", 403),  # prepending an allowed address does not help
        ("not-an-address", 403),  # garbage: the proxy itself is the caller
        ("", 403),
    ]
    for forwarded, status in cases:
        got = await _get(client, **{"X-Forwarded-For": forwarded or None})
        assert got[0] == status, forwarded
    await client.close()
    seen = [r["client_ip"] for r in audit_rows(tmp_path / "b" / "audit.sqlite")]
    assert seen == [
        "203.0.113.5",
        "203.0.113.5",
        "203.0.113.5",
        "198.51.100.9",
        "127.0.0.1",
        "127.0.0.1",
    ]


def test_address_parsing_and_proxy_walk() -> None:
    assert str(parse_address("[2001:db8::1]:443")) == "2001:db8::1"
    assert str(parse_address("192.0.2.7:5050")) == "192.0.2.7"
    assert str(parse_address("::ffff:192.0.2.7")) == "192.0.2.7"
    assert str(parse_address("fe80::1%eth0")) == "fe80::1"
    assert parse_address("unknown") is None and parse_address("") is None
    trusted = Networks(["10.0.0.0/8", "2001:db8::/32"])
    assert "::ffff:10.1.2.3" in trusted and "192.0.2.1" not in trusted and "x" not in trusted
    walk = [
        ("10.0.0.1", ["192.0.2.1"], "192.0.2.1"),
        ("10.0.0.1", ["192.0.2.66, 192.0.2.1", "10.0.0.9"], "192.0.2.1"),
        ("10.0.0.1", ["10.0.0.7, 10.0.0.9"], "10.0.0.7"),  # all trusted: the left-most
        ("10.0.0.1", ["[2001:db9::5]:1234"], "2001:db9::5"),
        ("192.0.2.200", ["192.0.2.1"], "192.0.2.200"),  # untrusted peer: header ignored
        ("10.0.0.1", ["192.0.2.1, bogus"], "10.0.0.1"),
    ]
    for peer, forwarded, want in walk:
        assert client_address(peer, forwarded, trusted) == want, (peer, forwarded)
    assert client_address("10.0.0.1", ["192.0.2.1"], None) == "10.0.0.1"


async def test_consumer_allow_list(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    cfg = _config(tmp_path)
    cfg["consumers"]["lc2"]["allow_from"] = ["10.9.0.0/16"]
    cfg["consumers"]["other"] = {
        "username": "other",
        "password_hash": PASSWORD_HASH,
        "allow_from": ["127.0.0.0/8", "::1"],
    }
    client, _ = await _client(aiohttp_client, cfg)
    assert await _get(client) == (403, "106")
    assert await _get(client, Authorization=basic(user="other")) == (200, "000")
    await client.close()
    refused = audit_rows(tmp_path / "audit.sqlite")[0]
    assert refused["error"] == "consumer 'lc2' may not call from 127.0.0.1"


# --- mutual TLS ------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    good: tuple[Path, Path]  # pinned client
    other: tuple[Path, Path]  # same CA, not pinned
    stranger: tuple[Path, Path]  # another CA
    good_sha256: str


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    crt, pem = path.with_suffix(".crt"), path.with_suffix(".key")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


def make_pki(tmp_path: Path) -> Pki:
    ca_key, other_ca_key = _key(), _key()
    ca = _cert("lc2 test CA", ca_key, None, ca=True)
    other_ca = _cert("stranger CA", other_ca_key, None, ca=True)
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    skey = _key()
    server = _write(tmp_path / "server", _cert("127.0.0.1", skey, (ca, ca_key), server=True), skey)
    k1, k2, k3 = _key(), _key(), _key()
    good_cert = _cert("lc2 proxy", k1, (ca, ca_key))
    return Pki(
        ca=tmp_path / "ca.crt",
        server_cert=server[0],
        server_key=server[1],
        good=_write(tmp_path / "good", good_cert, k1),
        other=_write(tmp_path / "other", _cert("someone", k2, (ca, ca_key)), k2),
        stranger=_write(
            tmp_path / "stranger", _cert("lc2 proxy", k3, (other_ca, other_ca_key)), k3
        ),
        good_sha256=hashlib.sha256(good_cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def _client_ssl(pki: Pki, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


async def _tls_get(url: str, ctx: ssl.SSLContext) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{url}/api/v1/fisher", params={"personalId": PID}, headers=lc2_headers(), ssl=ctx
        ) as r,
    ):
        return r.status, (await r.json())["responseCode"], dict(r.headers)


async def test_mutual_tls_with_pinned_client_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pin = ":".join(pki.good_sha256[i : i + 2] for i in range(0, 64, 2)).upper()  # openssl's form
    cfg = live_config(
        tmp_path,
        listen={
            "tls": {
                "cert_file": str(pki.server_cert),
                "key_file": str(pki.server_key),
                "client_ca_file": str(pki.ca),
            }
        },
    )
    cfg["consumers"]["lc2"]["client_cert_sha256"] = [pin]
    async with live_gateway(cfg) as gw:
        assert gw.url.startswith("https://")
        status, code, headers = await _tls_get(gw.url, _client_ssl(pki, pki.good))
        assert (status, code) == (200, "000")
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        # a certificate of the same CA that the consumer did not pin
        assert (await _tls_get(gw.url, _client_ssl(pki, pki.other)))[:2] == (403, "107")
        # no certificate, or one of another CA: no TLS session at all
        for cert in (None, pki.stranger):
            with pytest.raises(aiohttp.ClientError):
                await _tls_get(gw.url, _client_ssl(pki, cert))
        # plain HTTP to the TLS port gets no HTTP answer
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert not reply.startswith(b"HTTP/1.1 200")
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert [(r["status"], r["code"]) for r in rows] == [(200, "000"), (403, "107")]


async def test_tls_settings_are_checked_at_load(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    base = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    cfg = live_config(tmp_path, listen={"tls": {**base, "cert_file": str(tmp_path / "none.crt")}})
    with pytest.raises(ConfigError) as err:
        settings_from(cfg)
    assert [".".join(map(str, p.path)) for p in err.value.problems] == ["listen.tls.cert_file"]
    # the wrong key for the certificate
    wrong = {**base, "key_file": str(pki.good[1])}
    with pytest.raises(ConfigError) as err:
        settings_from(live_config(tmp_path, listen={"tls": wrong}))
    assert "cannot load" in err.value.problems[0].message
    # server-side TLS without client certificates
    async with live_gateway(live_config(tmp_path, listen={"tls": base})) as gw:
        t0 = time.monotonic()
        status, code, _ = await _tls_get(gw.url, _client_ssl(pki, None))
        assert (status, code) == (200, "000") and time.monotonic() - t0 < 5
