"""One error hierarchy for the whole gateway.

Every error a client can see is a :class:`GatewayError` with an HTTP status,
a stable three-digit code grouped by the pipeline stage that raised it, an
English and a Thai message and optional structured details.  Codes are part
of the public contract (operators grep logs for them, LC2 consumers branch on
them): never renumber one, only add.

    1xx  request   - headers, credentials, parameters
    2xx  plan      - routing, grants, limits
    3xx  execute   - the backend behind a service
    4xx  normalise - mapping legacy values
    5xx  gateway   - the gateway itself (audit store, internal faults)

``responseCode`` ``"000"`` is success, as in LC2's envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AuditUnavailable",
    "BackendBadResponse",
    "BackendBusy",
    "BackendError",
    "BackendFault",
    "BackendNoRecord",
    "BackendRejected",
    "BackendTLSError",
    "BackendTimeout",
    "BackendUnavailable",
    "CircuitOpen",
    "Forbidden",
    "GatewayError",
    "InternalError",
    "InvalidHeader",
    "InvalidParameters",
    "Maintenance",
    "MethodNotAllowed",
    "MissingHeaders",
    "NotFound",
    "ParameterProblem",
    "QuotaExceeded",
    "Unauthorized",
    "all_error_types",
]


class GatewayError(Exception):
    """Base of every error rendered to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "500"
    message_en: ClassVar[str] = "Internal error"
    message_th: ClassVar[str] = "เกิดข้อผิดพลาดภายในระบบ"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.message_en)
        self.detail = detail
        self.extra: dict[str, Any] = extra

    @property
    def headers(self) -> Mapping[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        """The error-specific part of the JSON body (envelope keys are added by respond)."""
        out: dict[str, Any] = {"error": type(self).__name__}
        if self.detail:
            out["detail"] = self.detail
        out.update(self.extra)
        return out


# --- 1xx request -----------------------------------------------------------


class MissingHeaders(GatewayError):
    status = 400
    code = "101"
    message_en = "Required LC2 header(s) missing"
    message_th = "ไม่พบส่วนหัว (header) ที่จำเป็นของ LC2"

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"missing: {', '.join(names)}", missingHeaders=names)


class InvalidHeader(GatewayError):
    status = 400
    code = "102"
    message_en = "An LC2 header has an invalid value"
    message_th = "ค่าในส่วนหัว (header) ของ LC2 ไม่ถูกต้อง"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}", invalidHeaders=[{"header": name, "reason": reason}])


class Unauthorized(GatewayError):
    status = 401
    code = "103"
    message_en = "Invalid credentials"
    message_th = "ข้อมูลยืนยันตัวตนไม่ถูกต้อง"

    @property
    def headers(self) -> Mapping[str, str]:
        return {"WWW-Authenticate": 'Basic realm="lc2-gateway", charset="UTF-8"'}


class ParameterProblem(dict[str, str]):
    """One offending parameter: ``{"parameter": name, "reason": text}``."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(parameter=parameter, reason=reason)


class InvalidParameters(GatewayError):
    status = 400
    code = "104"
    message_en = "Invalid request parameter(s)"
    message_th = "พารามิเตอร์ของคำขอไม่ถูกต้อง"

    def __init__(self, problems: list[ParameterProblem]) -> None:
        names = ", ".join(p["parameter"] for p in problems)
        super().__init__(f"invalid: {names}", invalidParameters=problems)
        self.problems = problems


# --- 2xx plan --------------------------------------------------------------


class NotFound(GatewayError):
    status = 404
    code = "201"
    message_en = "No such service or endpoint"
    message_th = "ไม่พบบริการหรือ endpoint ที่เรียก"


class Forbidden(GatewayError):
    status = 403
    code = "202"
    message_en = "This consumer is not granted this service"
    message_th = "ผู้ใช้บริการนี้ไม่ได้รับอนุญาตให้เข้าถึงบริการนี้"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "203"
    message_en = "HTTP method not allowed"
    message_th = "ไม่อนุญาตให้ใช้ HTTP method นี้"

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"allowed: {', '.join(allowed)}", allowed=list(allowed))
        self._allowed = allowed

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Allow": ", ".join(self._allowed)}


class QuotaExceeded(GatewayError):
    status = 429
    code = "204"
    message_en = "Call quota exhausted; retry after the window resets"
    message_th = "จำนวนการเรียกใช้เกินโควตาที่กำหนด กรุณาลองใหม่เมื่อครบรอบเวลา"

    def __init__(self, rule: str, limit: int, per: str, scope: str, retry_after: float) -> None:
        super().__init__(
            f"quota '{rule}' exhausted: {limit} calls per {per} for this {scope}",
            quota={"rule": rule, "limit": limit, "per": per, "scope": scope},
        )
        self._retry_after = max(1, int(retry_after + 0.999))

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self._retry_after)}


# --- 3xx execute -----------------------------------------------------------


class BackendUnavailable(GatewayError):
    status = 503
    code = "301"
    message_en = "The data source behind this service is unavailable"
    message_th = "ระบบฐานข้อมูลต้นทางของบริการนี้ไม่พร้อมให้บริการ"

    def __init__(self, detail: str | None = None, *, retryable: bool = False) -> None:
        super().__init__(detail)
        # True only when a pooled connection turned out dead (a restart, a reset): a fresh
        # one may work. A connect that failed or timed out would fail again, or take as long.
        self.retryable = retryable


class BackendTimeout(GatewayError):
    status = 504
    code = "302"
    message_en = "The data source did not answer in time"
    message_th = "ระบบฐานข้อมูลต้นทางไม่ตอบสนองภายในเวลาที่กำหนด"


class BackendError(GatewayError):
    status = 502
    code = "303"
    message_en = "The data source returned an error"
    message_th = "ระบบฐานข้อมูลต้นทางตอบกลับด้วยข้อผิดพลาด"


class BackendBusy(GatewayError):
    status = 503
    code = "304"
    message_en = "The data source is busy; retry later"
    message_th = "ระบบฐานข้อมูลต้นทางมีภาระงานสูง กรุณาลองใหม่ภายหลัง"

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": "1"}


class BackendFault(GatewayError):
    """The upstream answered with a fault (a SOAP Fault, an error document)."""

    status = 502
    code = "305"
    message_en = "The data source reported a fault"
    message_th = "ระบบต้นทางแจ้งข้อผิดพลาดในการประมวลผล"

    def __init__(self, fault_code: str, fault_string: str) -> None:
        super().__init__(f"{fault_code}: {fault_string}", faultCode=fault_code,
                         faultString=fault_string)


class BackendRejected(BackendFault):
    """A fault the service's config says means bad input from the caller."""

    status = 400
    code = "306"
    message_en = "The data source rejected the request's input"
    message_th = "ระบบต้นทางปฏิเสธข้อมูลที่ส่งไป"


class BackendNoRecord(BackendFault):
    """A fault the service's config says means "no such record" and should be a 404."""

    status = 404
    code = "307"
    message_en = "The data source has no such record"
    message_th = "ไม่พบข้อมูลในระบบต้นทาง"


class BackendBadResponse(GatewayError):
    """Malformed, oversized or unsafe answer (bad XML/JSON, entity expansion, XXE)."""

    status = 502
    code = "308"
    message_en = "The data source sent an answer that cannot be read safely"
    message_th = "ข้อมูลที่ได้รับจากระบบต้นทางมีรูปแบบไม่ถูกต้องหรือไม่ปลอดภัย"


class BackendTLSError(GatewayError):
    status = 502
    code = "309"
    message_en = "A secure (TLS) connection to the data source could not be made"
    message_th = "ไม่สามารถเชื่อมต่อแบบปลอดภัย (TLS) กับระบบต้นทางได้"


class CircuitOpen(GatewayError):
    """Recent calls to this backend failed; it is given time before the next try."""

    status = 503
    code = "310"
    message_en = "The data source is failing; calls are paused for a short while"
    message_th = "ระบบต้นทางขัดข้อง ระบบงดส่งคำขอชั่วคราว กรุณาลองใหม่ภายหลัง"

    def __init__(self, backend: str, retry_after: float, last_error: str | None) -> None:
        super().__init__(f"circuit open for backend {backend}")
        self._retry_after = max(1, int(retry_after + 0.999))
        self.last_error = last_error

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self._retry_after)}


# --- 5xx gateway -----------------------------------------------------------


class AuditUnavailable(GatewayError):
    status = 503
    code = "501"
    message_en = "The audit trail cannot be written; calls are refused until it can"
    message_th = "ไม่สามารถบันทึกประวัติการเข้าถึงได้ ระบบจึงงดให้บริการชั่วคราว"

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": "5"}


class Maintenance(GatewayError):
    status = 503
    code = "502"
    message_en = "The service is under maintenance"
    message_th = "ระบบอยู่ระหว่างการบำรุงรักษา"

    def __init__(self, message: str | None, retry_after: int = 300) -> None:
        super().__init__(message or "under maintenance")
        self._retry_after = retry_after

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self._retry_after)}


class StateUnavailable(GatewayError):
    status = 503
    code = "503"
    message_en = "Call quotas cannot be checked; calls are refused until they can"
    message_th = "ไม่สามารถตรวจสอบโควตาการเรียกใช้ได้ ระบบจึงงดให้บริการชั่วคราว"

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": "5"}


class InternalError(GatewayError):
    status = 500
    code = "500"


def all_error_types() -> list[type[GatewayError]]:
    """Every concrete error type, for docs and the uniqueness test of codes."""
    seen: list[type[GatewayError]] = []
    stack: list[type[GatewayError]] = [GatewayError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            seen.append(sub)
            stack.append(sub)
    return sorted(seen, key=lambda c: c.code)
