"""A legacy HTTP upstream for tests and the worked example: aiohttp on loopback, in a thread.

It runs on its own event loop in its own thread, so synchronous fixtures can
start it and a slow handler never blocks the loop of the gateway under test.
It serves the fisher register (``PEOPLE``) as JSON and XML, the legacy
vessel port-movement endpoint of ``config/vessels.yaml`` (TIS-620 XML that
does not declare its charset), echo endpoints that show exactly what the
adapter sent, and hostile answers: any status, slow, huge, malformed, XXE
and entity bombs, also as the endpoint of a SOAP service (``/soap``).

    python -m tests.http_upstream --port 8091
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]

from tests.support import PEOPLE, make_pid, plain_pid

__all__ = [
    "MOVEMENTS",
    "NOT_REGISTERED",
    "REJECTED",
    "Upstream",
    "bomb_xml",
    "make_certificate",
    "running_http_upstream",
    "xxe_xml",
]

NOT_REGISTERED = make_pid("310101234570")  # the legacy system answers resultCode 404 in a 200
REJECTED = make_pid("310101234571")  # ... and resultCode 400

MOVEMENTS: dict[str, list[dict[str, str]]] = {
    PEOPLE[0]["pid"]: [
        {
            "VESSEL_REG": "SK-1234",
            "VESSEL_NAME": "ศรีสมุทร 1",
            "DIRECTION": "OUT",
            "PORT": "74",
            "MOVE_DATE": "25670115",
        },
        {
            "VESSEL_REG": "SK-1234",
            "VESSEL_NAME": "ศรีสมุทร 1",
            "DIRECTION": "IN",
            "PORT": "74",
            "MOVE_DATE": "25670119",
        },
    ],
}


def xxe_xml(secret_path: str, soap: bool = False) -> bytes:
    """An answer whose entity would pull a local file into the document."""
    inner = "<r><v>&xxe;</v></r>"
    if soap:
        inner = (
            '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
            "<GetFisherResponse><GetFisherResult><FisherRecord><PID>&xxe;</PID>"
            "</FisherRecord></GetFisherResult></GetFisherResponse></e:Body></e:Envelope>"
        )
    root = "e:Envelope" if soap else "r"
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret_path}">]>'
        f"{inner}"
    ).encode()


def bomb_xml(soap: bool = False) -> bytes:
    """Billion laughs: ten levels of ten references, 10**9 copies if anything expanded it."""
    ents = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    body = "<v>&l9;</v>"
    if soap:
        body = (
            '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
            f"<GetFisherResponse>{body}</GetFisherResponse></e:Body></e:Envelope>"
        )
    return f'<?xml version="1.0"?><!DOCTYPE x [{"".join(ents)}]>{body}'.encode()


def _fisher_rows(pid: str) -> list[dict[str, str]]:
    return [
        {k: p[k] for k in ("PID", "FULLNAME", "SEX", "BIRTH_DATE", "MOO")}
        for p in PEOPLE
        if plain_pid(p["PID"]) == plain_pid(pid)
    ]


def _xml_rows(tag: str, rows: list[dict[str, str]]) -> str:
    return "".join(
        f"<{tag}>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in r.items()) + f"</{tag}>"
        for r in rows
    )


@dataclass
class Upstream:
    """A running upstream; tests change ``soap_reply``/``delay`` and read ``requests``."""

    url: str = ""
    delay: float = 0.0
    soap_reply: bytes = b""
    soap_status: int = 200
    requests: list[dict[str, object]] = field(default_factory=list)
    soap_requests: list[bytes] = field(default_factory=list)
    stopping: asyncio.Event | None = None

    async def pause(self) -> None:
        if self.delay and self.stopping is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.delay)


def _app(state: Upstream) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/fisher")
    async def fisher_json(request: web.Request) -> web.Response:
        await state.pause()
        pid = request.query.get("pid", "")
        if plain_pid(pid) == NOT_REGISTERED:
            return web.json_response({"resultCode": "404", "resultMsg": f"ไม่พบข้อมูล {pid}"})
        if plain_pid(pid) == REJECTED:
            return web.json_response({"resultCode": "400", "resultMsg": f"รูปแบบเลข {pid} ผิด"})
        return web.json_response({"resultCode": "000", "data": _fisher_rows(pid)})

    @routes.get("/fisher/{pid}.xml")
    async def fisher_xml(request: web.Request) -> web.Response:
        rows = _xml_rows("fisher", _fisher_rows(request.match_info["pid"]))
        body = f'<?xml version="1.0" encoding="UTF-8"?><response><count>1</count>{rows}</response>'
        return web.Response(body=body.encode(), content_type="application/xml")

    @routes.post("/fisher/search")
    async def fisher_search(request: web.Request) -> web.Response:
        doc = await request.json()
        return web.json_response({"result": {"items": _fisher_rows(str(doc["query"]["pid"]))}})

    @routes.post("/fisher/form")
    async def fisher_form(request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response(_fisher_rows(str(form.get("pid", ""))))

    @routes.post("/fisher/xml")
    async def fisher_xml_post(request: web.Request) -> web.Response:
        doc = etree.fromstring(await request.read(), etree.XMLParser(resolve_entities=False))
        rows = _xml_rows("row", _fisher_rows(doc.findtext("pid") or ""))
        return web.Response(text=f"<rows>{rows}</rows>", content_type="text/xml")

    @routes.route("*", "/echo/{tail:.*}")
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen: dict[str, object] = {
            "method": request.method,
            "raw_path": request.raw_path,
            "path": request.path,
            "query": [[k, v] for k, v in request.query.items()],
            "headers": {k: v for k, v in request.headers.items() if k.lower().startswith("x-")},
            "auth": request.headers.get("Authorization", ""),
            "content_type": request.headers.get("Content-Type", ""),
            "body": body.decode("utf-8", "replace"),
        }
        state.requests.append(seen)
        return web.json_response({"echo": seen})

    @routes.get("/pipo/movements")
    async def movements(request: web.Request) -> web.Response:
        owner = plain_pid(request.query.get("ownerPid", ""))
        moves = MOVEMENTS.get(owner)
        code, msg = ("0", "OK") if moves else ("1", "NOT FOUND")
        items = "".join(
            f'<MOVE SEQ="{i}">' + "".join(f"<{k}>{v}</{k}>" for k, v in m.items()) + "</MOVE>"
            for i, m in enumerate(moves or [], 1)
        )
        text = (
            f'<?xml version="1.0"?>\n<PIPO><RESULT_CODE>{code}</RESULT_CODE>'
            f"<RESULT_MSG>{msg}</RESULT_MSG><MOVEMENTS>{items}</MOVEMENTS></PIPO>"
        )
        # TIS-620 bytes and no charset anywhere: what such a system really sends
        return web.Response(body=text.encode("cp874"), headers={"Content-Type": "text/xml"})

    @routes.route("*", "/status/{code}")
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await state.pause()
        return web.json_response({"data": []})

    @routes.get("/rows/{count}")
    async def rows(request: web.Request) -> web.Response:
        count = int(request.match_info["count"])
        return web.json_response({"data": [{"n": n} for n in range(1, count + 1)]})

    @routes.get("/sleep/{seconds}")
    async def sleep(request: web.Request) -> web.Response:
        if state.stopping is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), float(request.match_info["seconds"]))
        return web.json_response({"data": []})

    @routes.get("/big")
    async def big(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "0"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"data": "')
        chunk = b"x" * 65536
        sent = 0
        while sent < size:  # no Content-Length: the cap must hold while streaming
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write(b'"}')
        return resp

    @routes.get("/raw/{kind}")
    async def raw(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        bodies = {
            "malformed": b"<response><data><row>1</row></data",
            "bomb": bomb_xml(),
            "xxe": xxe_xml(request.query.get("file", "/etc/hostname")),
            "json-broken": b'{"data": [1, 2',
            "json-deep": b'{"a":' * 1000 + b"1" + b"}" * 1000,
        }
        return web.Response(body=bodies[kind], content_type="application/xml")

    @routes.route("*", "/soap")
    async def soap(request: web.Request) -> web.Response:
        state.soap_requests.append(await request.read())
        await state.pause()
        return web.Response(
            body=state.soap_reply, status=state.soap_status, content_type="text/xml"
        )

    app = web.Application()
    app.add_routes(routes)
    return app


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (valid one day): ``(cert.pem, key.pem)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lc2-gateway test upstream")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream-cert.pem", directory / "upstream-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def running_http_upstream(port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Upstream]:
    """The upstream on ``127.0.0.1`` in a thread of its own, stopped on exit."""
    state = Upstream()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(state), access_log=None, shutdown_timeout=1.0)
    started = threading.Event()
    failure: list[BaseException] = []

    async def start() -> None:
        state.stopping = asyncio.Event()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        bound = runner.addresses[0][1]
        state.url = f"{'https' if tls else 'http'}://127.0.0.1:{bound}"

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the caller, not lost in the thread
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="http-upstream")
    thread.start()
    started.wait(10)
    if failure:
        thread.join()
        raise failure[0]

    def stop() -> None:
        if state.stopping is not None:
            state.stopping.set()
        loop.stop()

    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stop)
        thread.join(timeout=10)


def _main() -> None:
    ap = argparse.ArgumentParser(description="legacy HTTP upstream for config/vessels.yaml")
    ap.add_argument("--port", type=int, default=8091)
    args = ap.parse_args()
    with running_http_upstream(args.port) as up:
        print(f"serving {up.url} (Ctrl-C stops)", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    _main()
