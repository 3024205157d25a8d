"""TLS on the LC2 listener: the server context, mutual TLS and certificate pins.

With ``listen.tls.client_ca_file`` set, a client must present a certificate
that chains to one of those CAs, or the handshake fails before any HTTP is
read.  A consumer may in addition pin the certificates it accepts by their
SHA-256 fingerprint (of the DER certificate, as ``openssl x509 -noout
-fingerprint -sha256`` prints it): a valid certificate of the same CA that
is not pinned is refused (403, code 107).

The context is built when the config is loaded (file reads happen there,
never on the event loop), so a bad certificate or key is a config problem
with its YAML line, not a failure at the first call.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path
from typing import Any

__all__ = ["normalise_fingerprint", "peer_fingerprint", "server_context"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def normalise_fingerprint(text: str) -> str:
    """``AB:CD:…`` or ``abcd…`` (64 hex digits) to lower-case hex; ValueError otherwise."""
    value = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _HEX64.fullmatch(value):
        raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
    return value


def server_context(
    cert_file: Path,
    key_file: Path,
    *,
    key_password: str | None = None,
    client_ca_file: Path | None = None,
    min_version: str = "1.2",
) -> ssl.SSLContext:
    """A server context; raises OSError or ssl.SSLError naming what could not be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.load_cert_chain(str(cert_file), str(key_file), password=key_password)
    if client_ca_file is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca_file))
    return ctx


def peer_fingerprint(transport: Any) -> str | None:
    """SHA-256 of the client certificate on this connection, lower-case hex; None without one."""
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None
