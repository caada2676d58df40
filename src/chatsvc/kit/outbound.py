"""The one guarded HTTP client for every URL called on behalf of a workspace (MCP servers, HTTP
retrieval backends, export callbacks): allowed schemes and ports, public addresses only unless an
operator admits them, connections pinned to the checked address, no environment proxies, capped
time and size. Two twins share every check: an httpx transport (`guarded_client`) and an httpx2
transport (`guarded_httpx2_client`) for the `mcp` SDK, which is built on httpx2."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any, Final

import httpcore
import httpcore2
import httpx
import httpx2

from chatsvc.kit.errors import Invalid

if TYPE_CHECKING:
    from chatsvc.config import Settings

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MiB: Final = 1024 * 1024
DEFAULT_PORTS: Final = {"https": 443, "http": 80}
ALLOW_LIST_HINT: Final = "an operator may admit it in CHATSVC_OUTBOUND_ALLOW_LIST"


class OutboundBlocked(Invalid):
    """A call the outbound policy refuses. The message names the scheme, host, port or address
    and the rule; it never holds a path, a query or credentials (they may carry secrets)."""

    def __init__(self, message: str, *, code: str = "outbound_blocked") -> None:
        super().__init__(message, code=code)


class ResponseTooLarge(OutboundBlocked):
    """The peer answered more than the policy's max_response_bytes."""

    def __init__(self, message: str, *, code: str = "outbound_response_too_large") -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class OutboundPolicy:
    """What a workspace-initiated call may reach. Built once from settings (`from_settings`)."""

    allowed_schemes: AbstractSet[str] = frozenset({"https"})
    #: None: 443, plus 80 when "http" is an allowed scheme
    allowed_ports: AbstractSet[int] | None = None
    #: admit private, loopback, CGNAT and unique-local addresses (a deployment on a private
    #: network). Link-local (cloud metadata), multicast, unspecified and reserved addresses stay
    #: refused: only the allow-list admits those.
    allow_private: bool = False
    #: CIDRs ("127.0.0.1/32", "10.1.0.0/16") or exact hostnames ("mcp.internal") admitted even
    #: when they are (or resolve to) non-public addresses
    allow_list: Sequence[str] = ()
    max_response_bytes: int = 10 * MiB
    #: the whole exchange (resolution, connect, request, every byte of the response)
    timeout_seconds: float = 10.0
    #: 0 refuses to follow redirects; N > 0 follows up to N, each hop checked like the first
    max_redirects: int = 0
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schemes = frozenset(s.lower() for s in self.allowed_schemes)
        if not schemes or not schemes <= DEFAULT_PORTS.keys():
            raise ValueError(
                f"allowed_schemes must be a non-empty subset of {{http, https}}: {schemes}"
            )
        ports = (
            frozenset(DEFAULT_PORTS[s] for s in schemes)
            if self.allowed_ports is None
            else frozenset(self.allowed_ports)
        )
        if self.max_response_bytes < 1 or self.timeout_seconds <= 0 or self.max_redirects < 0:
            raise ValueError(
                "max_response_bytes, timeout_seconds must be positive, max_redirects >= 0"
            )
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in self.allow_list:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        # Frozen: the normalised values replace what the caller passed (any set, any sequence).
        object.__setattr__(self, "allowed_schemes", schemes)
        object.__setattr__(self, "allowed_ports", ports)
        object.__setattr__(self, "allow_list", tuple(self.allow_list))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allowed_schemes=frozenset(settings.outbound_allowed_schemes),
            allowed_ports=(
                None
                if settings.outbound_allowed_ports is None
                else frozenset(settings.outbound_allowed_ports)
            ),
            allow_private=settings.outbound_allow_private,
            allow_list=tuple(settings.outbound_allow_list),
            max_response_bytes=settings.outbound_max_response_bytes,
            timeout_seconds=settings.outbound_timeout_seconds,
            max_redirects=settings.outbound_max_redirects,
        )


# -- addresses -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Special:
    """A non-public range: how to name it, and whether `allow_private` admits it."""

    network: IPNetwork
    label: str
    private: bool


def _ranges(*rows: tuple[str, str, bool]) -> tuple[_Special, ...]:
    return tuple(_Special(ip_network(net), label, private) for net, label, private in rows)


# Explicit tables rather than ipaddress's is_private/is_global alone: their lists changed between
# Python patch releases, and a refusal should name the range it hit.
_SPECIAL_V4: Final = _ranges(
    ("0.0.0.0/8", "in 'this network' 0.0.0.0/8 (reaches this host)", False),
    ("10.0.0.0/8", "private (RFC 1918)", True),
    ("100.64.0.0/10", "carrier-grade NAT space (RFC 6598)", True),
    ("127.0.0.0/8", "loopback", True),
    ("169.254.0.0/16", "link-local (where cloud metadata endpoints live)", False),
    ("172.16.0.0/12", "private (RFC 1918)", True),
    ("192.0.0.0/24", "IETF protocol assignments", False),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", False),
    ("192.88.99.0/24", "6to4 relay anycast", False),
    ("192.168.0.0/16", "private (RFC 1918)", True),
    ("198.18.0.0/15", "benchmarking (RFC 2544)", False),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", False),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", False),
    ("224.0.0.0/4", "multicast", False),
    ("240.0.0.0/4", "reserved (incl. broadcast)", False),
)
_SPECIAL_V6: Final = _ranges(
    ("::/128", "unspecified", False),
    ("::1/128", "loopback", True),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)", True),
    ("100::/64", "discard-only (RFC 6666)", False),
    ("2001::/23", "IETF protocol assignments (incl. Teredo)", False),
    ("2001:db8::/32", "documentation", False),
    ("fc00::/7", "unique local (ULA)", True),
    ("fe80::/10", "link-local", False),
    ("fec0::/10", "site-local (deprecated)", True),
    ("ff00::/8", "multicast", False),
)
_GLOBAL_UNICAST_V6: Final = ip_network("2000::/3")
_NAT64_V6: Final = ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, well-known NAT64), if any:
    a connection to it ends up at that IPv4 address, so that is the one to judge."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_V6:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _special(address: IPAddress) -> _Special | None:
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            found = _special(inner)
            if found is None:
                return None
            return _Special(found.network, f"an IPv6 form of {inner}, {found.label}", found.private)
        for row in _SPECIAL_V6:
            if address in row.network:
                return row
        if address not in _GLOBAL_UNICAST_V6:
            return _Special(_GLOBAL_UNICAST_V6, "outside global unicast 2000::/3", False)
        return None
    for row in _SPECIAL_V4:
        if address in row.network:
            return row
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not public (e.g. "loopback"), or None when it is."""
    found = _special(address)
    return None if found is None else found.label


def _refusal(address: IPAddress, host: str, policy: OutboundPolicy) -> str | None:
    """Why the policy refuses `address` (reached as `host`), or None when it admits it."""
    found = _special(address)
    if found is None or _normal_host(host) in policy._hosts:
        return None
    candidates: list[IPAddress] = [address]
    if isinstance(address, IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        candidates.append(inner)
    if any(c in net for c in candidates for net in policy._networks):
        return None
    if policy.allow_private and found.private:
        return None
    return found.label


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form the socket layer accepts ("127.1",
    "2130706433" and "0x7f.0.0.1" all mean 127.0.0.1) — without any DNS lookup."""
    host = host.strip("[]")
    try:
        return ip_address(host)
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order. Tests replace this function."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


# -- URLs ------------------------------------------------------------------------------------

# Names that never reach the public internet; refused early so that a bad callback URL is
# reported when it is submitted, not when the job runs.
_LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def describe_url(url: httpx.URL | str) -> str:
    """scheme://host:port of a URL, for messages and logs: the path, query and userinfo may
    carry secrets (a Slack-style webhook URL's path is its secret), so they are left out."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    host = parsed.host
    if ":" in host:
        host = f"[{host}]"
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    return f"{parsed.scheme}://{host}" + (f":{port}" if port else "")


def url_problem(
    url: httpx.URL | str, policy: OutboundPolicy, *, allow_credentials: bool = True
) -> str | None:
    """Why the policy refuses `url` without looking anything up (scheme, port, a literal or
    local host, and credentials unless `allow_credentials`), or None. DNS is checked when the
    guarded client connects."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "it is not a valid URL"
    scheme = parsed.scheme
    if scheme not in policy.allowed_schemes:
        allowed = ", ".join(sorted(policy.allowed_schemes))
        return f"scheme {scheme or '(none)'!r} is not allowed (allowed: {allowed})"
    if not allow_credentials and parsed.userinfo:
        # httpx would send them as Basic auth to whatever host the URL names.
        return (
            "it carries credentials (user:password@); send them in a header instead, "
            "e.g. Authorization: Bearer {{secret:NAME}}"
        )
    host = _normal_host(parsed.host)
    if not host:
        return "it has no host"
    port = parsed.port or DEFAULT_PORTS[scheme]
    assert policy.allowed_ports is not None  # set by __post_init__
    if port not in policy.allowed_ports:
        allowed = ", ".join(str(p) for p in sorted(policy.allowed_ports))
        return f"port {port} is not allowed (allowed: {allowed})"
    address = literal_address(host)
    if address is not None:
        reason = _refusal(address, host, policy)
        return None if reason is None else f"address {address} is {reason}; {ALLOW_LIST_HINT}"
    if host in policy._hosts or policy.allow_private:
        return None
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return f"host {host!r} is a local name; {ALLOW_LIST_HINT}"
    if "." not in host:
        return f"host {host!r} is not a public DNS name (it has no dot); {ALLOW_LIST_HINT}"
    return None


def check_url(
    url: httpx.URL | str, policy: OutboundPolicy, *, allow_credentials: bool = True
) -> str:
    """`url` itself when the policy admits it (as far as can be told without DNS), else
    OutboundBlocked: for URLs a workspace submits (callbacks, MCP servers) before anything is
    stored or enqueued."""
    problem = url_problem(url, policy, allow_credentials=allow_credentials)
    if problem is not None:
        raise OutboundBlocked(f"URL {describe_url(url)} is refused: {problem}")
    return str(url)


# -- what both transports share ------------------------------------------------------------
#
# The httpx transport and its httpx2 twin differ only in the classes they build and raise; the
# decisions (which URL, which address, which answer) are made once, here.

ErrorTable = tuple[tuple[type[Exception], type[Exception]], ...]


@contextlib.contextmanager
def _mapped_errors(table: ErrorTable) -> Iterator[None]:
    """Re-raise a connection-pool error as its client-library twin, most specific first (what
    httpx's own transport does; its mapping helper is private)."""
    try:
        yield
    except Exception as exc:
        for core, mapped in table:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


async def _checked_addresses(
    host: str,
    port: int,
    policy: OutboundPolicy,
    connect_timeout: float | None,
    *,
    timeout_error: type[Exception],
    connect_error: type[Exception],
) -> list[IPAddress]:
    """Every address `host` stands for, resolved once, each admitted by the policy; else
    OutboundBlocked (a refused address) or the pool's timeout / connect error."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(connect_timeout):
                addresses = await resolve(host, port)
        except TimeoutError:
            raise timeout_error(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as exc:  # UnicodeError: a label IDNA refuses
            raise connect_error(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise connect_error(f"{host} resolves to no address")
    for address in addresses:
        reason = _refusal(address, host, policy)
        if reason is not None:
            shown = host if literal is not None else f"{host} (which resolves to {address})"
            raise OutboundBlocked(
                f"outbound call to {shown}:{port} refused: address {address} is {reason}; "
                f"{ALLOW_LIST_HINT}"
            )
    return addresses


def _refuse_url(url: str, policy: OutboundPolicy, *, allow_credentials: bool) -> str:
    """The origin of `url` for messages, or OutboundBlocked before anything is sent."""
    origin = describe_url(url)
    problem = url_problem(url, policy, allow_credentials=allow_credentials)
    if problem is not None:
        raise OutboundBlocked(f"outbound call to {origin} refused: {problem}")
    return origin


def _identity_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # A compressed body would be inflated by the client after the size cap, so ask for none.
    headers = [(k, v) for k, v in raw if k.lower() != b"accept-encoding"]
    headers.append((b"Accept-Encoding", b"identity"))
    return headers


def _head_problem(
    headers: Iterable[tuple[bytes, bytes]], origin: str, limit: int, *, head: bool
) -> OutboundBlocked | None:
    """Why the response head alone is refused (an announced size over the cap, a compressed
    body), or None."""
    for name, value in headers:
        key = name.lower()
        # A HEAD answer announces the size of a body it does not send.
        if key == b"content-length" and not head and value.strip().isdigit():
            if int(value) > limit:
                return _too_large(origin, limit)
        elif key == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return OutboundBlocked(
                f"response from {origin} is {value.decode('latin-1')!r}-encoded though "
                "identity was asked for; compressed bodies are refused (size cap)"
            )
    return None


async def _capped_parts(
    parts: AsyncIterator[bytes],
    origin: str,
    limit: int,
    deadline: float,
    budget: float,
    *,
    errors: ErrorTable,
    timeout_error: type[Exception],
) -> AsyncIterator[bytes]:
    """The body's parts, refused past `limit` bytes or past the exchange's deadline."""
    received = 0
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                with _mapped_errors(errors):
                    part = await anext(parts, None)
        except TimeoutError:
            # The client library's timeout, so that callers handle it like any other (retry, 504).
            raise timeout_error(_total_timeout_message(origin, budget)) from None
        if part is None:
            return
        received += len(part)
        if received > limit:
            raise _too_large(origin, limit)
        yield part  # outside the timeout scope: a cancel scope must not span a yield


def _total_timeout_message(origin: str, budget: float) -> str:
    return f"{origin} did not complete within {budget:g} s"


def _too_large(origin: str, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"response from {origin} exceeds {limit} bytes")


# -- the httpx transport ---------------------------------------------------------------------

_HTTPCORE_ERRORS: Final[ErrorTable] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class _PinningBackend(httpcore.AsyncNetworkBackend):
    """Opens every connection itself: resolves the host once, refuses unless every address is
    admitted, then connects to a checked address. The pool never resolves on its own, so no
    second lookup can answer differently (DNS rebinding); TLS still verifies the hostname,
    because httpcore passes the URL's host as server_hostname to start_tls."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _checked_addresses(
            host,
            port,
            self._policy,
            timeout,
            timeout_error=httpcore.ConnectTimeout,
            connect_error=httpcore.ConnectError,
        )
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, like a plain connect
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundBlocked("outbound calls never use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx.AsyncByteStream):
    """The response body, refused past max_response_bytes or past the exchange's deadline."""

    def __init__(
        self, stream: httpcore.Response, origin: str, limit: int, deadline: float, budget: float
    ) -> None:
        self._response = stream
        self._origin = origin
        self._limit = limit
        self._deadline = deadline
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts = _capped_parts(
            self._response.aiter_stream(),
            self._origin,
            self._limit,
            self._deadline,
            self._budget,
            errors=_HTTPCORE_ERRORS,
            timeout_error=httpx.TimeoutException,
        )
        async for part in parts:
            yield part

    async def aclose(self) -> None:
        with _mapped_errors(_HTTPCORE_ERRORS):
            await self._response.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that applies an OutboundPolicy to every request it sends. Use it
    through `guarded_client`: a client of your own with trust_env=True would mount proxy
    transports for HTTP(S)_PROXY that bypass this one."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            # Explicit, so SSL_CERT_FILE / SSL_CERT_DIR from the environment do not apply.
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinningBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        policy = self._policy
        origin = _refuse_url(str(request.url), policy, allow_credentials=True)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=_identity_headers(request.headers.raw),
            content=request.stream,
            extensions=request.extensions,
        )
        deadline = asyncio.get_running_loop().time() + policy.timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                with _mapped_errors(_HTTPCORE_ERRORS):
                    response = await self._pool.handle_async_request(core_request)
        except TimeoutError:
            message = _total_timeout_message(origin, policy.timeout_seconds)
            raise httpx.TimeoutException(message) from None
        problem = _head_problem(
            response.headers,
            origin,
            policy.max_response_bytes,
            head=request.method == "HEAD",
        )
        if problem is not None:
            await response.aclose()
            raise problem
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CappedStream(
                response, origin, policy.max_response_bytes, deadline, policy.timeout_seconds
            ),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_client(
    policy: OutboundPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    """The httpx client for workspace-initiated calls. Build one in the lifespan and close it
    there. `ssl_context` replaces the certifi CA bundle (a private CA; tests)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, ssl_context=ssl_context, limits=limits),
        # Environment proxies (HTTP(S)_PROXY, ALL_PROXY) would route around the guard, and
        # .netrc credentials must not be sent to workspace-chosen hosts.
        trust_env=False,
        follow_redirects=policy.max_redirects > 0,
        max_redirects=policy.max_redirects,
        timeout=httpx.Timeout(policy.timeout_seconds),
        headers={"User-Agent": "chatsvc", **(headers or {})},
    )


# -- the httpx2 twin (the mcp SDK's HTTP client) ----------------------------------------------

_HTTPCORE2_ERRORS: Final[ErrorTable] = (
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
)


class _PinningBackend2(httpcore2.AsyncNetworkBackend):
    """`_PinningBackend` for httpcore2: the same checks, the same single resolution."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await _checked_addresses(
            host,
            port,
            self._policy,
            timeout,
            timeout_error=httpcore2.ConnectTimeout,
            connect_error=httpcore2.ConnectError,
        )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise OutboundBlocked("outbound calls never use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream2(httpx2.AsyncByteStream):
    def __init__(
        self, stream: httpcore2.Response, origin: str, limit: int, deadline: float, budget: float
    ) -> None:
        self._response = stream
        self._origin = origin
        self._limit = limit
        self._deadline = deadline
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts = _capped_parts(
            self._response.aiter_stream(),
            self._origin,
            self._limit,
            self._deadline,
            self._budget,
            errors=_HTTPCORE2_ERRORS,
            timeout_error=httpx2.TimeoutException,
        )
        async for part in parts:
            yield part

    async def aclose(self) -> None:
        with _mapped_errors(_HTTPCORE2_ERRORS):
            await self._response.aclose()


class GuardedHttpx2Transport(httpx2.AsyncBaseTransport):
    """`GuardedTransport` for httpx2 clients (the `mcp` SDK's). It also refuses URLs that carry
    credentials, and its time cap may be longer than the policy's (`timeout_seconds`): an MCP
    session keeps one response (an SSE stream) open while it lasts, and its caller puts its
    own deadlines on connect and each call."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx2.Limits | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
        self._policy = policy
        self._budget = timeout_seconds or policy.timeout_seconds
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinningBackend2(policy),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        policy = self._policy
        origin = _refuse_url(str(request.url), policy, allow_credentials=False)
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=_identity_headers(request.headers.raw),
            content=request.stream,
            extensions=request.extensions,
        )
        deadline = asyncio.get_running_loop().time() + self._budget
        try:
            async with asyncio.timeout_at(deadline):
                with _mapped_errors(_HTTPCORE2_ERRORS):
                    response = await self._pool.handle_async_request(core_request)
        except TimeoutError:
            message = _total_timeout_message(origin, self._budget)
            raise httpx2.TimeoutException(message) from None
        problem = _head_problem(
            response.headers,
            origin,
            policy.max_response_bytes,
            head=request.method == "HEAD",
        )
        if problem is not None:
            await response.aclose()
            raise problem
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CappedStream2(
                response, origin, policy.max_response_bytes, deadline, self._budget
            ),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_httpx2_client(
    policy: OutboundPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    limits: httpx2.Limits | None = None,
    timeout: httpx2.Timeout | None = None,
    timeout_seconds: float | None = None,
    event_hooks: dict[str, list[Any]] | None = None,
) -> httpx2.AsyncClient:
    """`guarded_client` for httpx2: what the `mcp` SDK's transports are given (streamable
    HTTP takes a client, SSE a factory of clients). `timeout` sets httpx2's per-phase timeouts;
    `timeout_seconds` the transport's cap on a whole exchange (default: the policy's)."""
    return httpx2.AsyncClient(
        transport=GuardedHttpx2Transport(
            policy, ssl_context=ssl_context, limits=limits, timeout_seconds=timeout_seconds
        ),
        trust_env=False,
        follow_redirects=policy.max_redirects > 0,
        max_redirects=policy.max_redirects,
        timeout=timeout or httpx2.Timeout(timeout_seconds or policy.timeout_seconds),
        headers={"User-Agent": "chatsvc", **(headers or {})},
        event_hooks=event_hooks,
    )
