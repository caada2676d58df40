"""A real webhook receiver on loopback, for tests: it records every request, checks Standard
Webhooks signatures with a given secret, fails on demand (N failures before success, a status, a
Retry-After, a slow or oversized answer, a redirect) and counts the distinct webhook-ids it
accepted, for "exactly one callback was delivered" assertions. It can serve HTTPS with a
certificate of its own (`tls=True`), so code that admits public HTTPS only can be tested too.

In a test::

    async with running_callback_receiver(secret=secret, fail_first=2) as receiver:
        await deliver(client, receiver.url, body, secret=secret, msg_id="job-1")
        assert await receiver.wait_for(1)            # one distinct webhook-id accepted
        assert [d.status for d in receiver.deliveries] == [500, 500, 200]
        receiver.configure(status=302, headers={"location": "http://169.254.169.254/"})
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from chatsvc.webhooks.signing import SignatureInvalid, verify
from tests.fakes._threaded import RunsInThread, ThreadedServer


@dataclass
class ReceiverBehaviour:
    """How the receiver answers. `fail_first` counts down over requests, whatever their id."""

    #: answer `fail_status` to this many requests before answering `status`
    fail_first: int = 0
    fail_status: int = 500
    #: a Retry-After header sent with the failures
    retry_after: str | None = None
    #: the answer once the failures are spent (and the signature, if checked, is valid)
    status: int = 200
    body: bytes = b'{"received": true}'
    #: extra response headers (e.g. {"location": ...} with status=302)
    headers: dict[str, str] = field(default_factory=dict)
    #: send `body` in chunks with no Content-Length (a size cap must count, not trust headers)
    stream_body: bool = False
    #: seconds to wait before answering
    delay: float = 0.0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    #: path and query as received
    target: str
    #: lower-case header names
    headers: dict[str, str]
    body: bytes
    #: True/False when a secret was given and the signature checked out or not; None otherwise
    signature_ok: bool | None
    signature_error: str | None
    #: the status the receiver answered
    status: int

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300 and self.signature_ok is not False


@dataclass
class _Recorded:
    deliveries: list[ReceivedRequest] = field(default_factory=list)
    failures_left: int = 0


class CallbackReceiver(RunsInThread):
    """The server, its behaviour (change it any time with `configure`) and what it recorded."""

    def __init__(
        self,
        behaviour: ReceiverBehaviour | None = None,
        *,
        secret: str | None = None,
        tolerance_seconds: int = 300,
        tls: bool = False,
        tls_hostname: str = "callback.test",
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.behaviour = behaviour or ReceiverBehaviour()
        self.secret = secret
        self.tolerance_seconds = tolerance_seconds
        self.tls_hostname = tls_hostname
        self._tls = tls
        self._host = host
        self._port = port
        self._log_level = log_level
        self._recorded = _Recorded(failures_left=self.behaviour.fail_first)
        self._server: ThreadedServer | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._ca_pem: bytes | None = None

    # -- what tests read ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def url(self) -> str:
        """The callback URL, by loopback address (no name resolution needed)."""
        return f"{self.scheme}://{self._host}:{self._port}/callback"

    def url_for(self, hostname: str, path: str = "/callback") -> str:
        """The same server under another name (resolve that name to 127.0.0.1 in the test)."""
        return f"{self.scheme}://{hostname}:{self._port}{path}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this receiver's certificate (for `tls_hostname` and
        127.0.0.1) and nothing else, with hostname checks on."""
        if self._ca_pem is None:
            raise RuntimeError("the receiver serves plain HTTP (tls=False) or is not started")
        return ssl.create_default_context(cadata=self._ca_pem.decode("ascii"))

    @property
    def deliveries(self) -> list[ReceivedRequest]:
        """Every request received, in order, whatever was answered."""
        return self._recorded.deliveries

    @property
    def accepted(self) -> list[ReceivedRequest]:
        """Requests answered 2xx (with a valid signature when a secret is set)."""
        return [d for d in self.deliveries if d.accepted]

    @property
    def distinct_ids(self) -> set[str]:
        """webhook-ids of accepted requests: a retried delivery counts once."""
        return {d.webhook_id for d in self.accepted if d.webhook_id is not None}

    def configure(self, **changes: Any) -> None:
        """Change some behaviour knobs; `fail_first` restarts its count."""
        self.behaviour = dataclasses.replace(self.behaviour, **changes)
        if "fail_first" in changes:
            self._recorded.failures_left = self.behaviour.fail_first

    def reset(self, **behaviour: Any) -> None:
        """Back to the default behaviour (plus `behaviour`) with nothing recorded."""
        self.behaviour = ReceiverBehaviour(**behaviour)
        self._recorded = _Recorded(failures_left=self.behaviour.fail_first)

    async def wait_for(self, count: int = 1, within: float = 5.0) -> bool:
        """True once `count` distinct webhook-ids were accepted, False after `within` s."""
        return await self._poll(lambda: len(self.distinct_ids) >= count, within)

    async def wait_for_requests(self, count: int = 1, within: float = 5.0) -> bool:
        """True once `count` requests of any kind arrived, False after `within` s."""
        return await self._poll(lambda: len(self.deliveries) >= count, within)

    @staticmethod
    async def _poll(done: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        while not done():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the callback receiver is already running")
        tls: dict[str, Any] = {}
        if self._tls:
            self._tempdir = tempfile.TemporaryDirectory(prefix="callback-receiver-")
            certfile, keyfile = self._write_certificate(Path(self._tempdir.name))
            tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
        server = ThreadedServer(
            self._app,
            host=self._host,
            port=self._port,
            name="callback receiver",
            interface="asgi3",  # a bound method: uvicorn's guess would say ASGI2
            log_level=self._log_level,
            **tls,
        )
        self._port = server.port
        self._server = server
        server.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _write_certificate(self, directory: Path) -> tuple[Path, Path]:
        """A throwaway CA and a server certificate for `tls_hostname` and the loopback address."""
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callback-receiver test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [
            x509.DNSName(self.tls_hostname),
            x509.IPAddress(ipaddress.ip_address(self._host)),
        ]
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.tls_hostname)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        self._ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        certfile, keyfile = directory / "cert.pem", directory / "key.pem"
        certfile.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return certfile, keyfile

    # -- the receiver --------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Plain ASGI rather than routes: every request is recorded, even one sent in proxy
        # (absolute) form, which a router would not match.
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        behaviour = self.behaviour  # one snapshot: configure() replaces, not mutates
        headers = {k.lower(): v for k, v in request.headers.items()}
        signature_ok: bool | None = None
        signature_error: str | None = None
        if self.secret is not None:
            try:
                verify(self.secret, headers, body, tolerance_seconds=self.tolerance_seconds)
                signature_ok = True
            except SignatureInvalid as exc:
                signature_ok, signature_error = False, exc.message
        extra: dict[str, str] = {}
        if signature_ok is False:
            status = 401  # what a real receiver answers; spends no planned failure
        elif self._recorded.failures_left > 0:
            self._recorded.failures_left -= 1
            status = behaviour.fail_status
            if behaviour.retry_after is not None:
                extra["retry-after"] = behaviour.retry_after
        else:
            status, extra = behaviour.status, dict(behaviour.headers)
        target = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        self._recorded.deliveries.append(
            ReceivedRequest(
                request.method, target, headers, body, signature_ok, signature_error, status
            )
        )
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        response: Response
        if behaviour.stream_body and status == behaviour.status:
            response = StreamingResponse(_chunks(behaviour.body), status_code=status, headers=extra)
        else:
            response = Response(behaviour.body, status_code=status, headers=extra)
        await response(scope, receive, send)


async def _chunks(body: bytes, size: int = 65_536) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def running_callback_receiver(
    *,
    secret: str | None = None,
    tls: bool = False,
    tls_hostname: str = "callback.test",
    tolerance_seconds: int = 300,
    **behaviour: Any,
) -> CallbackReceiver:
    """A receiver to use as `async with` (or `with`); other keyword arguments are
    ReceiverBehaviour fields (fail_first, fail_status, retry_after, status, body, ...)."""
    return CallbackReceiver(
        ReceiverBehaviour(**behaviour),
        secret=secret,
        tls=tls,
        tls_hostname=tls_hostname,
        tolerance_seconds=tolerance_seconds,
    )
