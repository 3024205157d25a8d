"""Request stage: LC2 headers, the caller's credentials, and the parameters.

Everything here is checked before any backend is touched.  Missing headers
are reported together (400, ``missingHeaders``), as LC2 consumers expect;
then credentials (401, or 429 while the caller is locked out after repeated
failures), then where the consumer may call from (403: its address allow
list and pinned client certificates), then header values and parameters
(400, each offending name listed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from gateway.auth import Consumer, CredentialStore
from gateway.config.models import LC2Config
from gateway.config.runtime import Service
from gateway.errors import (
    InvalidHeader,
    InvalidParameters,
    MissingHeaders,
    ParameterProblem,
    Unauthorized,
)
from gateway.security.errors import AddressNotAllowed, CertificateNotAccepted
from gateway.security.front import Client
from gateway.transforms import is_valid_pid

__all__ = ["Caller", "authenticate", "parse_params"]

# NUL and other control characters have no place in a lookup value; some drivers refuse them
# with an error (PostgreSQL text can not hold NUL), others would pass them on
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Caller:
    consumer: Consumer
    office: str
    officer: str


async def authenticate(
    lc2: LC2Config, creds: CredentialStore, headers: Mapping[str, str], client: Client | None = None
) -> Caller:
    """The caller, or the first error; ``client`` brings lock-outs, API keys and allow lists."""
    office = headers.get(lc2.headers.office, "").strip()
    officer = headers.get(lc2.headers.officer, "").strip()
    auth = headers.get("Authorization", "")
    user_agent = headers.get("User-Agent", "")
    api_key = ""
    if client is not None and client.security.api_keys_in_use:
        api_key = headers.get(client.security.api_key_header, "")
    missing = [
        name
        for name, value in (
            ("Authorization", auth or api_key),
            (lc2.headers.office, office),
            (lc2.headers.officer, officer),
        )
        if not value
    ]
    if lc2.user_agent_prefix and not user_agent:
        missing.append("User-Agent")
    if missing:
        raise MissingHeaders(missing)
    if client is None:
        found = await creds.authenticate(auth)
        if found is None:
            raise Unauthorized()
        consumer = found
    else:
        consumer = await creds.check(
            auth, api_key=api_key, address=client.address, lockouts=client.lockouts
        )
        await _check_origin(consumer, client)
    if lc2.user_agent_prefix and not user_agent.startswith(lc2.user_agent_prefix):
        raise InvalidHeader("User-Agent", f"must start with {lc2.user_agent_prefix!r}")
    if not lc2.office_re.fullmatch(office):
        raise InvalidHeader(lc2.headers.office, f"office code must match {lc2.office_re.pattern}")
    if not is_valid_pid(officer):
        raise InvalidHeader(
            lc2.headers.officer, "must be the officer's 13-digit citizen ID with a valid checksum"
        )
    return Caller(consumer, office, officer)


async def _check_origin(consumer: Consumer, client: Client) -> None:
    """Right credentials from the wrong place count as a failed sign-in from that address."""
    if consumer.allow_from is not None and client.address not in consumer.allow_from:
        await CredentialStore.failed(client.lockouts, client.address)
        raise AddressNotAllowed(f"consumer {consumer.name!r} may not call from {client.address}")
    if consumer.cert_sha256 and client.cert_sha256() not in consumer.cert_sha256:
        await CredentialStore.failed(client.lockouts, client.address)
        raise CertificateNotAccepted(f"consumer {consumer.name!r}: client certificate not pinned")


def parse_params(
    service: Service,
    lc2: LC2Config,
    query: MultiMapping[str],
    path_values: Mapping[str, str],
) -> dict[str, object]:
    """Validated values to bind, keyed by parameter name; all problems at once."""
    problems: list[ParameterProblem] = []
    values: dict[str, object] = {}
    for name in query:
        if name not in service.param_index and name not in lc2.ignore_params:
            problems.append(ParameterProblem(name, "unknown parameter"))
    for spec in service.params:
        raw_values = query.getall(spec.name, [])
        if spec.name in path_values:
            raw_values = [path_values[spec.name], *raw_values]
        if len(raw_values) > 1:
            problems.append(ParameterProblem(spec.name, "given more than once"))
            continue
        if not raw_values or raw_values[0] == "":
            if spec.required:
                problems.append(ParameterProblem(spec.name, "is required"))
            else:
                values[spec.name] = None
                values.update(spec.derived(None))
            continue
        if _CONTROL.search(raw_values[0]):
            problems.append(ParameterProblem(spec.name, "must not contain control characters"))
            continue
        try:
            values[spec.name] = spec.parse(raw_values[0])
            if spec.is_citizen_id:
                values.update(spec.derived(values[spec.name]))
        except ValueError as exc:
            problems.append(ParameterProblem(spec.name, str(exc)))
    if problems:
        raise InvalidParameters(problems)
    return values
