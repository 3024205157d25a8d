"""Property tests over the whole mapping layer: random output mappings (nested, every transform,
chained), random legacy rows of every type a driver hands back, then the consumer policy and the
JSON renderer.  Nothing in between may raise: one bad legacy cell nulls its field, never fails
the call, and nothing a backend returns can make the answer unrenderable."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.models import FieldConfig
from gateway.normalise import FieldMap, Mapper, compile_mapping
from gateway.policy import MASKS, compile_policy
from gateway.respond import json_response
from gateway.transforms import TRANSFORMS
from gateway.transforms.registry import REGISTRY

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOOKUPS = {"sex": {"1": "ชาย", "2": "หญิง"}, "status": {"A": "ใช้งาน", "C": "ยกเลิก"}}
COLUMNS = ["PID", "FULLNAME", "BIRTH", "MOO", "AMOUNT", "FLAG", "CODE", "RAW"]
# every transform, with its example arguments and those that reach its other code paths
SPECS: list[str | Mapping[str, Any]] = [
    *(info.spec for info in REGISTRY.values()),
    *({info.name: args} for info in REGISTRY.values() for args in info.variants),
    {"lookup": "sex"},
    {"lookup": {"table": "status", "default": "?"}},
]
assert {next(iter(s)) if isinstance(s, dict) else s for s in SPECS} == set(TRANSFORMS)

THAI = "".join(chr(c) for c in range(0x0E01, 0x0E5C))
text = st.text(alphabet=st.one_of(st.sampled_from(THAI + " \u200b-/.0123456789"), st.characters()))
legacy_value = st.one_of(
    st.none(),
    text,
    st.text(alphabet="0123456789-/ ", max_size=17),
    st.binary(max_size=40),
    text.map(lambda s: s.encode("cp874", errors="ignore")),
    text.map(lambda s: s.encode("cp874", errors="ignore").decode("latin-1")),
    st.binary(max_size=20).map(bytearray),
    st.binary(max_size=20).map(lambda b: memoryview(b)),
    st.integers(),
    st.floats(),  # NaN and infinities too
    st.decimals(),  # NaN, sNaN and infinities too
    st.sampled_from(
        [
            decimal.Decimal("NaN"),
            decimal.Decimal("sNaN"),
            decimal.Decimal("-Infinity"),
            *(float("nan"), float("inf"), -0.0, 2**63, -(2**64)),
        ]
    ),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.uuids(),
    st.lists(st.integers(), max_size=3),
)

leaf = st.one_of(
    st.builds(
        lambda col, chain: {"column": col, "transform": chain},
        st.sampled_from([*COLUMNS, "pid", "MISSING_COLUMN"]),
        st.lists(st.sampled_from(SPECS), max_size=4),
    ),
    st.builds(lambda v: {"const": v}, st.one_of(st.integers(), text, st.booleans())),
)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF", min_size=1, max_size=8)
output = st.recursive(
    st.dictionaries(names, leaf, min_size=1, max_size=6),
    lambda inner: st.dictionaries(
        names, st.one_of(leaf, inner.map(lambda f: {"fields": f})), min_size=1, max_size=5
    ),
    max_leaves=8,
)
rows = st.lists(
    st.dictionaries(st.sampled_from([*COLUMNS, "pid", "Pid"]), legacy_value, max_size=8),
    max_size=3,
)


def _compile(spec: Mapping[str, Any]) -> Mapper:
    fields = {name: FieldConfig.model_validate(cfg) for name, cfg in spec.items()}
    return compile_mapping(fields, lookups=LOOKUPS, titles=["จ.ส.อ."])


def _leaves(fields: tuple[FieldMap, ...], prefix: str = "") -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for f in fields:
        path = f"{prefix}{f.name}"
        out.append((path, f.children is not None))
        if f.children is not None:
            out.extend(_leaves(f.children, f"{path}."))
    return out


@FUZZ
@given(spec=output, batch=rows, data=st.data())
def test_random_rows_through_a_random_mapping_never_raise(
    spec: Mapping[str, Any], batch: list[dict[str, Any]], data: st.DataObject
) -> None:
    mapper = _compile(spec)
    result = mapper.map_rows(batch)  # must not raise, whatever the cells hold
    assert len(result.rows) == len(batch)
    for row in result.rows:
        assert list(row) == list(spec)  # every field present, in the mapping's order
    # a consumer's policy over the same output never raises either
    paths = _leaves(mapper.fields)
    allow = data.draw(st.none() | st.lists(st.sampled_from([p for p, _ in paths]), max_size=4))
    mask_kinds = list(MASKS)
    mask = {
        p: data.draw(st.sampled_from(["null"] if nested else mask_kinds))
        for p, nested in data.draw(st.lists(st.sampled_from(paths), max_size=3, unique=True))
    }
    policy = compile_policy(mapper, allow=allow, mask=mask, path=("fuzz",))
    shown = policy.apply(result.rows)
    # and whatever came out, the renderer turns it into JSON
    body = json_response({"data": shown}).body
    assert isinstance(body, bytes)
    orjson.loads(body)


def test_the_renderer_takes_every_type_a_driver_returns() -> None:
    values = [
        decimal.Decimal("NaN"),
        decimal.Decimal("-Infinity"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("1E+30"),
        decimal.Decimal("12.50"),
        float("nan"),
        b"\x00\xff",
        bytearray(b"\x01"),
        memoryview(b"\x02"),
        uuid.UUID(int=1),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
        dt.time(1, 2),
        {1, 2},
        (1, "a"),
    ]
    body = json_response({"data": values}).body
    assert isinstance(body, bytes)
    doc = orjson.loads(body)["data"]
    assert doc[:4] == [None, None, None, 1e30]
    assert doc[4] == 12.5 and doc[5] is None and doc[6] == "00ff"


def test_text_with_a_lone_surrogate_is_written_not_raised() -> None:
    # found by the fuzz test above: a passthrough field holding bytes a driver decoded with
    # surrogateescape made the answer itself fail
    body = json_response({"data": [{"A": "ok\ud800", "B": 2**70}]}).body
    assert isinstance(body, bytes)
    assert orjson.loads(body) == {"data": [{"A": "ok\ufffd", "B": str(2**70)}]}
