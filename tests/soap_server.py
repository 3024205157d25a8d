"""A real SOAP service for tests and the benchmark: spyne on wsgiref, on loopback.

spyne is an independent SOAP stack (its own WSDL generator and serialiser),
so the gateway's SOAP adapter is tested against the SOAP a vendor product
would speak, not against zeep talking to itself.  It serves:

* ``GetFisher(personalId)``: the cross-backend fisher register (``PEOPLE``);
* ``GetVesselLicences(ownerId)``: the vessel-licence example of
  ``config/vessels.yaml``, nested owner and vessel elements, dates, and SOAP
  Faults for a few reserved owner IDs;
* ``Ping()``: a cheap health operation.

spyne does not implement WS-Security, so :class:`UsernameTokenCheck`, a WSGI
middleware in front of it, verifies the UsernameToken header (PasswordText
or PasswordDigest, with nonce replay and ``Created`` freshness checks) the
way a WS-Security server does, and answers a ``wsse:FailedAuthentication``
fault otherwise.  Run it alone for ``config/vessels.yaml``::

    python -m tests.soap_server --port 8090 [--soap12] [--user gw:secret]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import importlib.util
import io
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree  # type: ignore[import-untyped]

from tests.support import PEOPLE, make_pid, plain_pid

# spyne 2.14 vendors an old ``six`` (ImportWarning) and imports ``cgi`` (DeprecationWarning,
# removed in Python 3.13): both only at import time, so only the import is excused
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ImportWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from spyne import (  # type: ignore[import-untyped]
        Application,
        Array,
        ComplexModel,
        Date,
        Fault,
        Integer,
        ServiceBase,
        Unicode,
        rpc,
    )
    from spyne.protocol.soap import Soap11, Soap12  # type: ignore[import-untyped]
    from spyne.server.wsgi import WsgiApplication  # type: ignore[import-untyped]
    from spyne.util import six as _spyne_six  # type: ignore[import-untyped]


def _six_find_spec(self: Any, fullname: str, path: object, target: object = None) -> Any:
    return (
        importlib.util.spec_from_loader(fullname, self) if fullname in self.known_modules else None
    )


# The vendored six's import hook lacks the PEP 451 methods, so every later import in the
# process would warn; give it the ones six 1.16 added (same behaviour, no warning).
_importer_type = _spyne_six._SixMetaPathImporter
if not hasattr(_importer_type, "find_spec"):
    _importer_type.find_spec = _six_find_spec
    _importer_type.create_module = lambda self, spec: self.load_module(spec.name)
    _importer_type.exec_module = lambda self, module: None

__all__ = [
    "FAULT_BAD_REQUEST",
    "FAULT_NO_RECORD",
    "FAULT_SERVER",
    "LICENCES",
    "NS",
    "RPC_WSDL",
    "SLOW_OWNER",
    "SoapServer",
    "running_soap_server",
]

NS = "urn:lc2-gateway:test:vessels"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = "#PasswordDigest"

# Owner IDs the vessel service answers with a SOAP Fault (valid citizen IDs, so they pass
# the gateway's own validation and reach the service).
FAULT_NO_RECORD = make_pid("310101234567")
FAULT_BAD_REQUEST = make_pid("310101234568")
FAULT_SERVER = make_pid("310101234569")
SLOW_OWNER = make_pid("310101234566")  # the call is held until the server stops (10 s at most)

# rpc/literal: zeep builds such requests, spyne can not serve them (tests answer them canned)
RPC_WSDL = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:rpc-vessels"
    targetNamespace="urn:rpc-vessels">
  <message name="FindVesselIn"><part name="ownerId" type="xsd:string"/></message>
  <message name="FindVesselOut"><part name="vesselName" type="xsd:string"/></message>
  <portType name="VesselPort"><operation name="FindVessel">
    <input message="tns:FindVesselIn"/><output message="tns:FindVesselOut"/></operation>
  </portType>
  <binding name="VesselBinding" type="tns:VesselPort">
    <soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="FindVessel"><soap:operation soapAction="FindVessel"/>
      <input><soap:body use="literal" namespace="urn:rpc-vessels"/></input>
      <output><soap:body use="literal" namespace="urn:rpc-vessels"/></output>
    </operation>
  </binding>
  <service name="VesselService"><port name="VesselPort" binding="tns:VesselBinding">
    <soap:address location="http://127.0.0.1:1/rpc"/></port></service>
</definitions>
"""

logging.getLogger("spyne").setLevel(logging.CRITICAL)  # spyne logs every Fault as an error


class FisherRecord(ComplexModel):  # type: ignore[misc]
    __namespace__ = NS
    PID = Unicode
    FULLNAME = Unicode
    SEX = Unicode
    BIRTH_DATE = Unicode
    MOO = Unicode


class Owner(ComplexModel):  # type: ignore[misc]
    __namespace__ = NS
    personalId = Unicode
    titleName = Unicode
    firstName = Unicode
    lastName = Unicode


class Vessel(ComplexModel):  # type: ignore[misc]
    __namespace__ = NS
    registrationNo = Unicode
    vesselName = Unicode
    grossTonnage = Integer
    homePortCode = Unicode


class Licence(ComplexModel):  # type: ignore[misc]
    __namespace__ = NS
    licenceNo = Unicode
    licenceType = Unicode
    issueDate = Date
    expiryDate = Date
    status = Unicode
    owner = Owner
    vessel = Vessel


def _licence(
    no: str,
    kind: str,
    issued: dt.date,
    status: str,
    owner: tuple[str, str, str, str],
    vessel: dict[str, Any],
) -> Licence:
    pid, title, first, last = owner
    return Licence(
        licenceNo=no,
        licenceType=kind,
        issueDate=issued,
        expiryDate=issued.replace(year=issued.year + 2),
        status=status,
        owner=Owner(personalId=pid, titleName=title, firstName=first, lastName=last),
        vessel=Vessel(**vessel),
    )


_SOMCHAI = (PEOPLE[0]["pid"], "นาย", "สมชาย", "ใจดี")
LICENCES: dict[str, list[Licence]] = {
    PEOPLE[0]["pid"]: [
        _licence(
            "PL-2566-000123",
            "A1",
            dt.date(2023, 4, 1),
            "A",
            _SOMCHAI,
            {
                "registrationNo": "SK-1234",
                "vesselName": "ศรีสมุทร 1",
                "grossTonnage": 28,
                "homePortCode": "74",
            },
        ),
        _licence(
            "PL-2566-000124",
            "B2",
            dt.date(2023, 4, 1),
            "C",
            _SOMCHAI,
            {
                "registrationNo": "SK-1250",
                "vesselName": "ศรีสมุทร 2",
                "grossTonnage": 9,
                "homePortCode": "74",
            },
        ),
    ],
}


class VesselLicenceService(ServiceBase):  # type: ignore[misc]
    @rpc(Unicode, _returns=Array(FisherRecord))  # type: ignore[untyped-decorator]
    def GetFisher(ctx: Any, personalId: str | None) -> list[FisherRecord]:
        wanted = plain_pid(personalId or "")
        return [
            FisherRecord(
                PID=p["PID"],
                FULLNAME=p["FULLNAME"],
                SEX=p["SEX"],
                BIRTH_DATE=p["BIRTH_DATE"],
                MOO=p["MOO"],
            )
            for p in PEOPLE
            if plain_pid(p["PID"]) == wanted
        ]

    @rpc(Unicode, _returns=Array(Licence))  # type: ignore[untyped-decorator]
    def GetVesselLicences(ctx: Any, ownerId: str | None) -> list[Licence]:
        owner = plain_pid(ownerId or "")
        if owner == FAULT_NO_RECORD:
            raise Fault("Client.NoRecord", f"no licence holder with ID {ownerId}")
        if owner == FAULT_BAD_REQUEST:
            raise Fault("Client.InvalidOwnerId", f"owner ID {ownerId} is not registered format")
        if owner == FAULT_SERVER:
            raise Fault("Server.Database", "ORA-12541: TNS:no listener")
        return LICENCES.get(owner, [])

    @rpc(_returns=Unicode)  # type: ignore[untyped-decorator]
    def Ping(ctx: Any) -> str:
        return "pong"


def _application(soap12: bool) -> WsgiApplication:
    proto = Soap12 if soap12 else Soap11
    app = Application(
        [VesselLicenceService],
        tns=NS,
        name="VesselLicenceService",
        in_protocol=proto(validator="lxml"),
        out_protocol=proto(),
    )
    return WsgiApplication(app)


# --- WS-Security UsernameToken, verified in front of spyne --------------------------

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _auth_fault(soap12: bool, why: str) -> bytes:
    if soap12:
        env = "http://www.w3.org/2003/05/soap-envelope"
        fault = (
            f"<e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode>"
            f'<e:Value xmlns:wsse="{WSSE}">wsse:FailedAuthentication</e:Value></e:Subcode></e:Code>'
            f'<e:Reason><e:Text xml:lang="en">{why}</e:Text></e:Reason></e:Fault>'
        )
    else:
        env = "http://schemas.xmlsoap.org/soap/envelope/"
        fault = (
            f'<e:Fault><faultcode xmlns:wsse="{WSSE}">wsse:FailedAuthentication</faultcode>'
            f"<faultstring>{why}</faultstring></e:Fault>"
        )
    envelope = f'<e:Envelope xmlns:e="{env}"><e:Body>{fault}</e:Body></e:Envelope>'
    return ('<?xml version="1.0"?>' + envelope).encode()


@dataclass
class UsernameTokenCheck:
    """WSGI middleware: the call passes only with a valid UsernameToken (when users are set)."""

    app: WsgiApp
    users: dict[str, str]
    soap12: bool
    max_age: float = 300.0
    seen_nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.users or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        why = self._verify(body)
        if why is not None:
            ctype = "application/soap+xml" if self.soap12 else "text/xml"
            start_response(
                "500 Internal Server Error", [("Content-Type", f"{ctype}; charset=utf-8")]
            )
            return [_auth_fault(self.soap12, why)]
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def _verify(self, body: bytes) -> str | None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            root = etree.fromstring(body, parser)
        except etree.XMLSyntaxError:
            return "unreadable request"
        token = root.find(f".//{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None:
            return "a UsernameToken is required"
        user = token.findtext(f"{{{WSSE}}}Username") or ""
        pw = token.find(f"{{{WSSE}}}Password")
        if user not in self.users or pw is None:
            return "the security token could not be authenticated"
        expected = self.users[user]
        if (pw.get("Type") or "").endswith(_DIGEST):
            nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
            created = token.findtext(f"{{{WSU}}}Created") or ""
            try:
                when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            except ValueError:
                return "the security token could not be authenticated"
            if abs((dt.datetime.now(dt.UTC) - when).total_seconds()) > self.max_age:
                return "the security token has expired"
            with self.lock:
                if nonce in self.seen_nonces:
                    return "the nonce was used before"
                self.seen_nonces.add(nonce)
            raw = base64.b64decode(nonce) + created.encode() + expected.encode()
            ok = base64.b64encode(hashlib.sha1(raw).digest()).decode() == (pw.text or "")
        else:
            ok = (pw.text or "") == expected
        return None if ok else "the security token could not be authenticated"


# --- the server --------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class SoapServer:
    """Controls of a running server: ``delay`` slows every call down; calls are counted."""

    url: str
    delay: float = 0.0
    calls: int = 0
    wsdl_gets: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"


def _controlled(app: WsgiApp, state: SoapServer) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            state.calls += 1
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if state.delay:
                state.stopping.wait(state.delay)  # interruptible: the server stops at once
            elif SLOW_OWNER.encode() in body:
                state.stopping.wait(10)
        elif "wsdl" in environ.get("QUERY_STRING", "").lower():
            state.wsdl_gets += 1
        return app(environ, start_response)

    return wrapped


@contextmanager
def running_soap_server(
    *,
    soap12: bool = False,
    users: dict[str, str] | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> Iterator[SoapServer]:
    """The spyne service on ``host`` (a free port unless given), stopped on exit.

    Another ``host`` than loopback is for a container on a network of the test's own.
    """
    app = UsernameTokenCheck(_application(soap12), dict(users or {}), soap12)
    state = SoapServer(url="")
    server = make_server(
        host, port, _controlled(app, state), server_class=_Server, handler_class=_Quiet
    )
    state.url = f"http://{host}:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--soap12", action="store_true")
    ap.add_argument("--user", action="append", default=[], help="name:password (WS-Security)")
    args = ap.parse_args()
    users = dict(u.split(":", 1) for u in args.user)
    with running_soap_server(soap12=args.soap12, users=users, port=args.port) as srv:
        print(f"serving {srv.wsdl_url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
