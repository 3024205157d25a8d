"""The status page: a read-only HTML view of one gateway process, for its operators.

``GET /status`` on the admin listener shows the services with the health
and circuit state of their backends, the calls of the last hour minute by
minute, the last errors, the audit store, maintenance mode and the config
version.  It is one server-rendered page: CSS inline, a chart in inline SVG,
no script, a meta refresh, so it works in any browser and through any
proxy, with scripts disabled.

It has its own credentials (``admin.status_users``: username -> scrypt hash
from ``lc2-gateway passwd``), checked with HTTP Basic like LC2's, and shows
nothing personal: the :class:`StatusObserver` keeps per-minute counts and,
for the last errors, only time, service, status, code and request id.  Error
texts from backends are shown with anything shaped like a citizen ID masked.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.auth import Consumer, CredentialStore
from gateway.errors import Unauthorized, all_error_types
from gateway.observe import CallRecord
from gateway.security.errors import AuthLockedOut
from gateway.security.redact import mask_all_pids

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = [
    "ERRORS_KEPT",
    "MINUTES",
    "MinuteCounts",
    "RecentError",
    "StatusObserver",
    "redact",
    "render_status",
    "status_routes",
]

MINUTES = 60
ERRORS_KEPT = 50
REFRESH_SECONDS = 30
_MESSAGES = {e.code: e.message_en for e in all_error_types()}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_CHALLENGE = 'Basic realm="lc2-gateway status", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class RecentError:
    """What the page keeps of a failed call: never a parameter, name or citizen ID."""

    at: float  # unix time the call started
    service: str
    kind: str
    status: int
    code: str
    request_id: str


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    start: float  # unix time of the minute's start
    ok: int  # 1xx-3xx
    client_errors: int  # 4xx
    server_errors: int  # 5xx

    @property
    def total(self) -> int:
        return self.ok + self.client_errors + self.server_errors


def _column(status: int) -> int:
    return 2 if status >= 500 else 1 if status >= 400 else 0


class StatusObserver:
    """Calls of the last hour, per minute and service, and the last errors (observer)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started = clock()
        # slot i holds minute m with m % MINUTES == i: [ok, 4xx, 5xx] per service
        self._slots: list[tuple[int, dict[str, list[int]]]] = [(-1, {}) for _ in range(MINUTES)]
        self.errors: deque[RecentError] = deque(maxlen=ERRORS_KEPT)

    def observe(self, rec: CallRecord) -> None:
        minute = int(rec.started // 60)
        i = minute % MINUTES
        stamp, counts = self._slots[i]
        if stamp < minute:
            counts = {}
            self._slots[i] = (minute, counts)
        elif stamp > minute:  # older than the hour kept
            return
        row = counts.get(rec.service)
        if row is None:
            row = counts[rec.service] = [0, 0, 0]
        row[_column(rec.status)] += 1
        if rec.status >= 400:
            self.errors.append(
                RecentError(
                    rec.started, rec.service, rec.kind, rec.status, rec.code, rec.request_id
                )
            )

    def minutes(self) -> list[MinuteCounts]:
        """The last ``MINUTES`` minutes, oldest first, the current one last."""
        now = int(self._clock() // 60)
        out = []
        for minute in range(now - MINUTES + 1, now + 1):
            stamp, counts = self._slots[minute % MINUTES]
            ok = c4 = c5 = 0
            if stamp == minute:
                for row in counts.values():
                    ok, c4, c5 = ok + row[0], c4 + row[1], c5 + row[2]
            out.append(MinuteCounts(minute * 60.0, ok, c4, c5))
        return out

    def by_service(self) -> dict[str, tuple[int, int, int]]:
        """Calls in the last hour per service: (ok, 4xx, 5xx)."""
        now = int(self._clock() // 60)
        totals: dict[str, list[int]] = {}
        for stamp, counts in self._slots:
            if now - MINUTES < stamp <= now:
                for service, row in counts.items():
                    acc = totals.setdefault(service, [0, 0, 0])
                    for k in range(3):
                        acc[k] += row[k]
        return {s: (r[0], r[1], r[2]) for s, r in totals.items()}


# --- rendering -------------------------------------------------------------------------

_CSS = """
body { font-family: "Noto Sans Thai", Sarabun, Loma, Tahoma, "DejaVu Sans", sans-serif;
       margin: 1.2em auto; max-width: 70em; padding: 0 1em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.45em; margin: 0 0 .2em; }
h2 { font-size: 1.1em; margin: 1.6em 0 .4em; border-bottom: 1px solid #ccd; }
.sub { color: #556; margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #dde; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: .05em .55em; border-radius: .7em; font-weight: 600;
         font-size: .9em; color: #fff; background: #667; }
.up, .closed { background: #1d7f3a; } .degraded, .half_open, .maintenance { background: #b36b00; }
.down, .open { background: #b3261e; } .unknown, .none { background: #667; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; margin: .8em 0; }
.card { border: 1px solid #ccd; border-radius: .4em; padding: .5em .8em; min-width: 10em; }
.card b { display: block; font-size: 1.4em; }
.banner { background: #fff4e0; border: 1px solid #b36b00; padding: .6em .8em; margin: .8em 0; }
.err { color: #8a1c14; font-size: .9em; }
svg { width: 100%; height: auto; }
th, td.t { white-space: nowrap; }
td:first-child { min-width: 9em; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: .9em; }
footer { color: #667; font-size: .85em; margin-top: 2em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def redact(text: str) -> str:
    """Mask anything shaped like a citizen ID, in any spelling, as the audit does."""
    return mask_all_pids(text)


def _badge(state: str | None, label: str | None = None) -> str:
    state = state or "none"
    return f'<span class="badge {_e(state)}">{_e(label or state.replace("_", "-"))}</span>'


def _chart(minutes: list[MinuteCounts], tz: ZoneInfo) -> str:
    width, height, bar = 1200, 130, 20
    peak = max((m.total for m in minutes), default=0) or 1
    bars = []
    for i, m in enumerate(minutes):
        x, y = i * bar, float(height)
        label = dt.datetime.fromtimestamp(m.start, tz).strftime("%H:%M")
        tip = f"{label}: {m.total} calls, {m.client_errors} 4xx, {m.server_errors} 5xx"
        parts = [f"<title>{_e(tip)}</title>"]
        for value, colour in (
            (m.ok, "#2f8f4e"),
            (m.client_errors, "#d08a00"),
            (m.server_errors, "#c62828"),
        ):
            h = value / peak * (height - 14)
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x + 1}" y="{y:.1f}" width="{bar - 2}" height="{h:.1f}" '
                    f'fill="{colour}"/>'
                )
        bars.append(f"<g>{''.join(parts)}</g>")
    return (
        f'<svg viewBox="0 0 {width} {height + 16}" role="img" '
        f'aria-label="calls per minute, last hour" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#99a"/>'
        f"{''.join(bars)}"
        f'<text x="0" y="{height + 13}" font-size="11" fill="#556">-60 min</text>'
        f'<text x="{width}" y="{height + 13}" font-size="11" fill="#556" '
        f'text-anchor="end">now</text>'
        f'<text x="2" y="10" font-size="11" fill="#556">peak {peak}/min</text></svg>'
    )


def render_status(
    rt: Runtime, health: tuple[int, Mapping[str, Any]], now: float | None = None
) -> str:
    settings = rt.settings
    tz = ZoneInfo(settings.quotas.timezone)
    now = time.time() if now is None else now
    _, body = health
    observer = rt.status
    minutes = observer.minutes()
    per_service = observer.by_service()
    backends: Mapping[str, Mapping[str, Any]] = body.get("backends", {})

    def when(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")

    total = sum(m.total for m in minutes)
    c4 = sum(m.client_errors for m in minutes)
    c5 = sum(m.server_errors for m in minutes)
    last_minute = minutes[-2].total if len(minutes) > 1 else 0

    rows = []
    for name, svc in sorted(settings.services.items()):
        h = backends.get(svc.backend, {})
        ok, e4, e5 = per_service.get(name, (0, 0, 0))
        err = h.get("error")
        latency = h.get("latencyMs")
        rows.append(
            "<tr>"
            f"<td><b>{_e(name)}</b><br><span class=sub>{_e(svc.config.description_th)}</span></td>"
            f"<td><code>{_e(svc.data_path)}</code></td>"
            f"<td>{_e(svc.backend)}</td>"
            f"<td>{_badge(h.get('status'))}"
            + (f'<div class="err">{_e(redact(str(err)))}</div>' if err else "")
            + "</td>"
            f"<td>{_badge(h.get('circuit'), h.get('circuit') or 'no breaker')}</td>"
            f'<td class="n">{"" if latency is None else f"{latency:.1f} ms"}</td>'
            f'<td class="n">{ok + e4 + e5}</td><td class="n">{e4}</td><td class="n">{e5}</td>'
            "</tr>"
        )
    unrouted = per_service.get("-")
    if unrouted:
        rows.append(
            '<tr><td colspan="6"><i>ไม่ตรงกับบริการใด / no such service (404, 405)</i></td>'
            f'<td class="n">{sum(unrouted)}</td><td class="n">{unrouted[1]}</td>'
            f'<td class="n">{unrouted[2]}</td></tr>'
        )

    errors = [
        "<tr>"
        f'<td class="t">{_e(when(e.at))}</td><td>{_e(e.service)}</td><td>{_e(e.kind)}</td>'
        f'<td class="n">{e.status}</td>'
        f"<td><code>{_e(e.code)}</code> {_e(_MESSAGES.get(e.code, ''))}</td>"
        f"<td><code>{_e(e.request_id)}</code></td>"
        "</tr>"
        for e in reversed(observer.errors)
    ]
    per_minute = "".join(
        f'<tr><td>{_e(when(m.start)[11:16])}</td><td class="n">{m.total}</td>'
        f'<td class="n">{m.client_errors}</td><td class="n">{m.server_errors}</td></tr>'
        for m in reversed(minutes)
        if m.total
    )
    audit = body.get("audit", {})
    maintenance = body.get("maintenance")
    banner = (
        f'<div class="banner">{_badge("maintenance")} ปิดปรับปรุงระบบ / maintenance mode is on: '
        f"{_e(maintenance)}</div>"
        if maintenance
        else ""
    )
    status = str(body.get("status", "unknown"))
    return f"""<!DOCTYPE html>
<html lang="th">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>lc2-gateway: {_e(status)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>lc2-gateway {_badge(status)}</h1>
<p class="sub">สถานะระบบ / status at {_e(when(now))} ({_e(settings.quotas.timezone)}) ·
config version <code id="config-version">{_e(settings.version)}</code> · up since
{_e(when(observer.started))}</p>
{banner}
<div class="cards">
<div class="card" id="calls-hour">การเรียกใช้ 1 ชั่วโมง / calls, last hour<b>{total}</b></div>
<div class="card" id="calls-minute">นาทีที่แล้ว / last full minute<b>{last_minute}</b></div>
<div class="card" id="errors-4xx">คำขอไม่ถูกต้อง / 4xx<b>{c4}</b></div>
<div class="card" id="errors-5xx">ระบบขัดข้อง / 5xx<b>{c5}</b></div>
<div class="card" id="audit">บันทึกการเข้าถึง / audit
<b>{_badge(audit.get("status"))}</b>queue {rt.audit.queue_depth}</div>
<div class="card" id="maintenance">ปิดปรับปรุง / maintenance
<b>{_badge("maintenance", "on") if maintenance else _badge("up", "off")}</b></div>
</div>
<h2>บริการ / Services</h2>
<table id="services">
<thead><tr><th>บริการ / service</th><th>path</th><th>backend</th><th>health</th>
<th>circuit</th><th>probe</th><th>calls 1 h</th><th>4xx</th><th>5xx</th></tr></thead>
<tbody>{"".join(rows)}</tbody>
</table>
<h2>การเรียกใช้ต่อนาที / Calls per minute, last hour</h2>
{_chart(minutes, tz)}
<details><summary>ตัวเลขรายนาที / per-minute counts</summary>
<table id="per-minute"><thead><tr><th>minute</th><th>calls</th><th>4xx</th><th>5xx</th></tr>
</thead><tbody>{per_minute}</tbody></table></details>
<h2>ข้อผิดพลาดล่าสุด / Last {ERRORS_KEPT} errors</h2>
<table id="errors">
<thead><tr><th>time</th><th>service</th><th>kind</th><th>HTTP</th><th>code</th>
<th>request id (audit)</th></tr></thead>
<tbody>{"".join(errors) or '<tr><td colspan="6">ไม่มี / none</td></tr>'}</tbody>
</table>
<footer>This process only: with --workers each worker has its own page on its admin port.
Refreshes every {REFRESH_SECONDS} s. Find a call by its request id in the audit.</footer>
</body>
</html>
"""


def status_routes(
    rt: Runtime, health: Callable[[Runtime], tuple[int, Mapping[str, Any]]]
) -> list[web.RouteDef]:
    """``GET /status`` for the admin app; users are those of the config it started with."""
    users = rt.settings.admin.status_users
    store = CredentialStore(
        {u: Consumer(u, u, (h,), frozenset(), frozenset()) for u, h in users.items()}
    )

    async def page(request: web.Request) -> web.StreamResponse:
        if not users:
            return web.Response(
                status=404,
                text="the status page is off: add admin.status_users to the config "
                "(usernames and `lc2-gateway passwd` hashes) and restart\n",
            )
        header = request.headers.get("Authorization", "")
        try:
            # the same counts and limits as LC2's sign-ins: guessing here locks out too
            await store.check(header, address=request.remote or "", lockouts=rt.lockouts)
        except AuthLockedOut as locked:
            return web.Response(
                status=429,
                text="status page: too many failed sign-ins, try again later\n",
                headers={**locked.headers, **_HEADERS},
            )
        except Unauthorized:
            return web.Response(
                status=401,
                text="status page: credentials required\n",
                headers={"WWW-Authenticate": _CHALLENGE, **_HEADERS},
            )
        text = render_status(rt, health(rt))
        return web.Response(text=text, content_type="text/html", charset="utf-8", headers=_HEADERS)

    return [web.get("/status", page)]
