"""The monthly report handed to the local mail system.

The report files go to ``--out-dir``; with ``--mail-to`` (or
``LC2_REPORT_MAIL_TO`` in the environment, as the systemd unit passes it) the
Markdown form is the body and the HTML and CSV forms are attachments of one
message given to the local MTA over SMTP (``localhost:25`` by default).  SMTP
and not ``sendmail``: the mail system's setgid helper can not run under the
unit's NoNewPrivileges.  The stdlib builds and sends the message.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

__all__ = ["send_report"]

_ATTACHED = {".html": "html", ".csv": "csv"}  # text subtypes


def send_report(
    files: Sequence[Path],
    *,
    month: str,
    to: Sequence[str],
    sender: str | None,
    smtp: str,
) -> None:
    msg = EmailMessage()
    msg["Subject"] = f"LC2 gateway monthly report {month} / รายงานการเข้าถึงข้อมูลประจำเดือน {month}"
    msg["From"] = sender or f"lc2-gateway@{socket.getfqdn()}"
    msg["To"] = ", ".join(to)
    body = next((f for f in files if f.suffix == ".md"), None)
    msg.set_content(body.read_text(encoding="utf-8") if body else f"Report {month}")
    for f in files:
        if f.suffix in _ATTACHED:
            text = f.read_text(encoding="utf-8")
            msg.add_attachment(text, subtype=_ATTACHED[f.suffix], filename=f.name)
    host, _, port = smtp.rpartition(":")
    with smtplib.SMTP(host or smtp, int(port) if host else 25, timeout=60) as server:
        server.send_message(msg)
