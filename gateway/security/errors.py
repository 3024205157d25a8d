"""Request-stage errors of the security layer, in the gateway's one hierarchy.

Their codes continue the ``1xx`` (request) group of :mod:`gateway.errors`.
None of them carries a reason in the body a client sees: what was wrong
(which username, which address, which certificate) goes to the audit record
only, so the answers can not be used to probe the configuration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gateway.errors import GatewayError

__all__ = ["AddressNotAllowed", "AuthLockedOut", "CertificateNotAccepted", "MalformedRequest"]


class AuthLockedOut(GatewayError):
    """Too many failed sign-ins from this address or for this username: refused unverified."""

    status = 429
    code = "105"
    message_en = "Too many failed sign-in attempts; retry later"
    message_th = "มีการยืนยันตัวตนไม่สำเร็จหลายครั้งเกินกำหนด กรุณาลองใหม่ภายหลัง"

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        super().__init__(detail)
        self._retry_after = max(1, math.ceil(retry_after))

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self._retry_after)}


class AddressNotAllowed(GatewayError):
    status = 403
    code = "106"
    message_en = "Calls from this address are not allowed"
    message_th = "ไม่อนุญาตให้เรียกใช้บริการจากที่อยู่ IP นี้"


class CertificateNotAccepted(GatewayError):
    status = 403
    code = "107"
    message_en = "The client certificate is not accepted for this consumer"
    message_th = "ใบรับรองของผู้เรียกใช้บริการไม่ได้รับอนุญาตสำหรับผู้ใช้บริการนี้"


class MalformedRequest(GatewayError):
    """An HTTP request the gateway will not read: malformed, over a size limit, or with a body."""

    status = 400
    code = "108"
    message_en = "Malformed HTTP request, or a request line, header or body over its limit"
    message_th = "คำขอ HTTP มีรูปแบบไม่ถูกต้อง หรือมีขนาดเกินกำหนด"
