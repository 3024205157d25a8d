"""Known answers for every format the audit evidence depends on.

A record written today must verify, be found by its subject and be proven by its seal in
ten years, by this code or by an auditor's own implementation of docs/audit.md.  So the
record content, the canonical form, the record hash and its links, the segment labels, the
seal payload, its digest and its signature, the citizen-ID key's fingerprint, the subject
hash (HMAC) and the masked hint are computed here from fixed inputs and fixed test keys and
compared with constants.

A change to any of these constants is a change of format.  It must be a deliberate
format-version bump (``lc2-audit-record/2``, ``lc2-audit-seal/2``), with a verifier that
still reads the old version and a migration note in docs/audit.md; never an edit of the
expected value to make a test pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.audit import keys
from gateway.audit.chain import (
    GENESIS,
    Head,
    Segmenter,
    assign_segment,
    canonical,
    label_key,
    link,
    record_hash,
)
from gateway.audit.record import Content, content_from_call, subject_hash
from gateway.audit.seal import SEAL_COLUMNS, Seal, make_seal
from gateway.audit.writer import key_fingerprint
from gateway.config.models import ParamConfig
from gateway.config.runtime import Service
from gateway.observe import CallRecord
from gateway.params import ParamSpec, compile_param
from gateway.transforms import mask_pid
from tests.audit_support import settings, write_config

KEY = bytes(range(32))  # the citizen-ID (HMAC) key of these vectors
SEED = bytes(range(32, 64))  # the Ed25519 seal key of these vectors
PID = "1101700203450"

ZERO64 = "0000000000000000000000000000000000000000000000000000000000000000"
HMAC_1 = "3fd26e2f340362c3ef968e64426ed81b971aa8d0f3d5e4275694c818ae1508f6"
HMAC_2 = "7dc3ed80332f1e255154718993abe83c9b03427b29be8d9c2de9b9cb4b2b75c6"
HASH_1 = "ea73ecd49f6a701ed7a2c8732b82c56e031459394f74dac531984f244e70249e"
HASH_2 = "096b48b634e7382c902c2d76669b086d8508c3fb418a0b18666cf30ba54985e1"

# consumer, office, officer, client_ip, user_agent, method, path, service, kind, sandbox
CALLER = ("lc2", "00023", "3100600123457", "10.0.0.7", "Linkage Center 2/1.0", "GET")
WHAT = ("/api/v1/fisher", "fisher", "data", 0)
CONTENT_1: Content = (
    "2025-03-04T06:00:00.125+00:00",
    "req-0001",
    *CALLER,
    *WHAT,
    HMAC_1,
    "1-xxxx-xxxxx-x5-0",
    '{"personalId":{"hmac":"' + HMAC_1 + '"}}',
    200,
    "000",
    1,
    4.2,
    2.1,
    None,
)
CONTENT_2: Content = (
    "2025-03-04T06:01:01.500+00:00",
    "req-0002",
    *CALLER,
    *WHAT,
    HMAC_2,
    None,  # not a valid citizen ID: hashed, but no hint
    '{"personalId":{"hmac":"' + HMAC_2 + '"}}',
    404,
    "404",
    0,
    250.0,
    None,
    "ไม่พบข้อมูลของ 1-xxxx-xxxxx-x5-1",
)


def _call(request_id: str, started: float, pid: str, **more: object) -> CallRecord:
    return CallRecord(
        request_id=request_id,
        started=started,
        method="GET",
        path="/api/v1/fisher",
        client_ip="10.0.0.7",
        service="fisher",
        consumer="lc2",
        office="00023",
        officer="3100600123457",
        user_agent="Linkage Center 2/1.0",
        params={"personalId": pid},
        **more,  # type: ignore[arg-type]
    )


CALL_1 = _call(
    "req-0001", 1741068000.125, PID, status=200, code="000", rows=1, duration=0.0042,
    backend_duration=0.0021,
)  # fmt: skip
CALL_2 = _call(
    "req-0002", 1741068061.5, "1101700203451", status=404, code="404", duration=0.25,
    error="ไม่พบข้อมูลของ 1101700203451",
)  # fmt: skip


@pytest.fixture(scope="module")
def fisher(tmp_path_factory: pytest.TempPathFactory) -> Service:
    config = write_config(Path(tmp_path_factory.mktemp("formats")))
    return settings(config).services["fisher"]  # personalId audited as "hash"


def test_genesis_is_64_zeros() -> None:
    assert GENESIS == ZERO64


def test_record_content_subject_hash_and_hint(fisher: Service) -> None:
    assert subject_hash(KEY, PID) == HMAC_1
    assert mask_pid(PID) == "1-xxxx-xxxxx-x5-0"
    assert content_from_call(CALL_1, fisher, KEY) == CONTENT_1
    assert content_from_call(CALL_2, fisher, KEY) == CONTENT_2


@dataclass(frozen=True)
class _Service:
    """What content_from_call reads of a service: its parameters and the audited subject."""

    param_index: Mapping[str, ParamSpec]
    subject_param: str | None


def test_record_content_of_every_audit_mode() -> None:
    service = _Service(
        {
            "personalId": compile_param(
                "personalId", ParamConfig(type="citizen_id", audit="clear")
            ),
            "note": compile_param("note", ParamConfig(type="string", audit="omit")),
            "n": compile_param("n", ParamConfig(type="integer")),
        },
        "personalId",
    )
    call = CallRecord(
        request_id="req-0003",
        started=1741068122.9996,  # milliseconds are cut, not rounded
        method="GET",
        path=f"/api/v1/fisher/{PID}",
        client_ip="10.0.0.8",
        service="fisher",
        kind="sandbox",
        sandbox=True,
        consumer="lc2",
        office="00023",
        params={"personalId": PID, "note": "ส่วนตัว", "n": "7", "x": "?"},
        status=200,
        code="000",
        rows=2,
        duration=0.0123456,
        backend_duration=0.00049,
    )
    head = ("2025-03-04T06:02:02.999+00:00", "req-0003", "lc2", "00023", None, "10.0.0.8", None)
    path = ("GET", "/api/v1/fisher/1-xxxx-xxxxx-x5-0", "fisher", "sandbox", 1)
    tail = (200, "000", 2, 12.346, 0.49, None)
    unknown = "<unknown parameter: value not kept>"
    assert content_from_call(call, service, KEY) == (  # type: ignore[arg-type]
        *head,
        *path,
        HMAC_1,
        "1-xxxx-xxxxx-x5-0",
        f'{{"personalId":"{PID}","note":"<omitted>","n":"7","x":"{unknown}"}}',
        *tail,
    )
    # without a service nothing of the values is kept, and there is no subject
    assert content_from_call(call, None, KEY) == (
        *head,
        *path,
        None,
        None,
        f'{{"personalId":"{unknown}","note":"{unknown}","n":"{unknown}","x":"{unknown}"}}',
        *tail,
    )


def test_canonical_form() -> None:
    assert (
        canonical(("gw1", "2025-03-04", *CONTENT_2))
        == (
            '["gw1","2025-03-04","2025-03-04T06:01:01.500+00:00","req-0002","lc2","00023",'
            '"3100600123457","10.0.0.7","Linkage Center 2/1.0","GET","/api/v1/fisher","fisher",'
            f'"data",0,"{HMAC_2}",null,"{{\\"personalId\\":{{\\"hmac\\":\\"{HMAC_2}\\"}}}}",'
            '404,"404",0,250.0,null,"ไม่พบข้อมูลของ 1-xxxx-xxxxx-x5-1"]'
        ).encode()
    )


def test_record_hashes_and_links() -> None:
    rows, head = link(
        Head(),
        "gw1",
        [(CONTENT_1, CALL_1.started), (CONTENT_2, CALL_2.started)],
        Segmenter("day", "Asia/Bangkok"),
    )
    assert [r[-5:] for r in rows] == [
        ("gw1", 1, "2025-03-04", ZERO64, HASH_1),
        ("gw1", 2, "2025-03-04", HASH_1, HASH_2),
    ]
    assert head == Head(2, HASH_2, "2025-03-04", None)
    # the same content after another record, or in another segment, hashes otherwise
    assert record_hash(HASH_2, "gw1", "2025-03-04", CONTENT_2) == (
        "defe4ac553adb2d2685966ae03eab812744998da8863efb4113105cab18c2c25"
    )
    assert record_hash(HASH_1, "gw1", "2025-03-05", CONTENT_2) == (
        "fb60c21f5316c7e2616b931be9feab0103f9bb01e8a147b7cb97b1a28f303502"
    )


def test_record_hash_is_the_formula_in_the_audit_guide() -> None:
    """An auditor's own implementation of docs/audit.md, with nothing of the gateway's."""
    for prev, content, want in ((ZERO64, CONTENT_1, HASH_1), (HASH_1, CONTENT_2, HASH_2)):
        body = json.dumps(
            ["gw1", "2025-03-04", *content], ensure_ascii=False, separators=(",", ":")
        ).encode()
        mine = hashlib.sha256(b"lc2-audit-record/1\n" + prev.encode() + b"\n" + body)
        assert mine.hexdigest() == want


def test_segment_labels() -> None:
    ts = CALL_1.started  # 13:00:00.125 in Bangkok, 06:00 UTC
    assert Segmenter("day", "Asia/Bangkok").label(ts) == "2025-03-04"
    assert Segmenter("hour", "Asia/Bangkok").label(ts) == "2025-03-04T13"
    assert Segmenter("hour", "UTC").label(ts) == "2025-03-04T06"
    # a new segmenter labels any time right, the epoch too (nothing cached yet)
    assert Segmenter("day", "Asia/Bangkok").label(0.5) == "1970-01-01"
    assert Segmenter("hour", "Asia/Bangkok").label(-0.5) == "1970-01-01T06"
    # a record stamped a little before the last one stays in the last one's segment
    assert assign_segment("2025-03-04", "2025-03-05", None) == "2025-03-05"
    assert assign_segment("2025-03-04", "2025-03-04.2", None) == "2025-03-04.2"
    assert assign_segment("2025-03-04", None, "2025-03-04") == "2025-03-04.2"
    assert assign_segment("2025-03-04", "2025-03-04.2", "2025-03-04.2") == "2025-03-04.3"
    assert label_key("2025-03-04.2") == ("2025-03-04", 2)
    assert label_key("2025-03-04T13") == ("2025-03-04T13", 1)


def test_key_fingerprint() -> None:
    """Stored with the trail: a gateway refuses to append with another citizen-ID key."""
    assert key_fingerprint(KEY) == (
        "3ffa25b665cc652b4ccf7b54147f3cf179430ffac23b2d6d026411bafbc6cfd4"
    )


def _seals() -> tuple[Seal, Seal]:
    first = make_seal(
        chain="gw1",
        segment="2025-03-04",
        first_seq=1,
        last_seq=2,
        count=2,
        first_ts=CONTENT_1[0],
        last_ts=CONTENT_2[0],
        prev_hash=GENESIS,
        last_hash=HASH_2,
        previous=None,
        sealed_at="2025-03-05T00:00:00.000+00:00",
        seed=SEED,
    )
    second = make_seal(
        chain="gw1",
        segment="2025-03-05",
        first_seq=3,
        last_seq=3,
        count=1,
        first_ts="2025-03-05T03:00:00.000+00:00",
        last_ts="2025-03-05T03:00:00.000+00:00",
        prev_hash=HASH_2,
        last_hash="f" * 64,
        previous=first,
        sealed_at="2025-03-06T00:00:00.000+00:00",
        seed=SEED,
    )
    return first, second


PUBLIC = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"


def test_seal_key_id() -> None:
    public = keys.public_from_seed(SEED)
    assert public.hex() == PUBLIC
    assert keys.key_id(public) == "24f6ed6acbfe1009"


def test_seal_payload_digest_and_signature() -> None:
    first, second = _seals()
    assert (
        first.payload()
        == (
            'lc2-audit-seal/1\n["gw1","2025-03-04",1,2,2,"2025-03-04T06:00:00.125+00:00",'
            f'"2025-03-04T06:01:01.500+00:00","{ZERO64}","{HASH_2}","{ZERO64}",'
            '"2025-03-05T00:00:00.000+00:00","24f6ed6acbfe1009"]'
        ).encode()
    )
    assert (
        first.seal_hash
        == hashlib.sha256(first.payload()).hexdigest()
        == ("2a97e0f794dec205227c7c664cd871dcf6857c5ec1c8493cbd96c0c4b21f1c2f")
    )
    assert first.signature == (
        "ca88cd07c606ae0d8f32d53b01bd3eda3ac632a8bf2c8b8fca18bc95e572ee014a5eb40f3627b662"
        "430aa0a1ed097fec3abeffefd78065102c7a5b5d42c57a0c"
    )
    assert second.prev_seal == first.seal_hash
    assert second.seal_hash == ("6be4eb40a55d8c377e75a687696295b3a2be2808a146a60301d179fb88ce0abf")
    assert second.signature == (
        "16913efe2ff4b3fdfbd7e111efd6517c87859c8038386017a7c9bd0f0c086f26a9189b26d2671a42"
        "5a00c7b56ffaf7f06fb98a72ce9f28fe6c9ce88e06022308"
    )
    trusted = keys.trusted_map([bytes.fromhex(PUBLIC)])
    assert first.signature_ok(trusted) is True and second.signature_ok(trusted) is True


def test_a_seal_reads_back_from_its_columns() -> None:
    first, _ = _seals()
    assert Seal.from_values(first.values()) == first
    both = Seal.from_values(first.values(), archive="gw1/2025-03-04.jsonl.gz", sha="ab" * 32)
    assert (both.archive, both.archive_sha256) == ("gw1/2025-03-04.jsonl.gz", "ab" * 32)
    named = Seal.from_values(first.values(), archive="gw1/2025-03-04.jsonl.gz")
    assert (named.archive, named.archive_sha256) == ("gw1/2025-03-04.jsonl.gz", None)
    with pytest.raises(ValueError, match="13 values"):
        Seal.from_values(first.values()[:-1])
    assert first.as_dict() == {
        **dict(zip(SEAL_COLUMNS, first.values(), strict=True)),
        "seal_hash": first.seal_hash,
    }


def test_signature_is_plain_ed25519() -> None:
    """RFC 8032, section 7.1, test 1: any Ed25519 library checks a seal."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert keys.public_from_seed(seed).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert keys.sign(seed, b"") == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
