"""The one guarded HTTP client for every URL called on behalf of a workspace (MCP servers, HTTP
retrieval backends, export callbacks): allowed schemes and ports, public addresses only unless an
operator admits them, connections pinned to the checked address, no environment proxies, capped
time and size. One guard serves both HTTP stacks: httpx (`guarded_client`) and httpx2
(`guarded_httpx2_client`, for the `mcp` SDK, which is built on httpx2)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn, TypeVar

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


#: a host name in its ASCII (IDNA) form: dot-separated labels of 1-63 letters, digits, inner
#: hyphens and underscores (some real hosts have them), 253 characters at most; no empty label,
#: no percent-encoding, no other character
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")


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
    if not _DNS_NAME.fullmatch(_normal_host(parsed.raw_host.decode("ascii", "replace"))):
        return (
            f"host {host!r} is not a valid DNS name (labels of letters, digits, inner "
            "hyphens and underscores, none empty)"
        )
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


# -- one guard, two HTTP stacks --------------------------------------------------------------
#
# httpx2 and httpcore2 are httpx and httpcore under new names: the same classes with the same
# signatures. So the guard is written once and finds the classes it builds and raises in a
# `_Stack`; only the two public transports and client builders name a library.


@dataclass(frozen=True)
class _Stack:
    """An HTTP stack the guard serves: a client library on the connection pool under it."""

    #: httpx or httpx2: the transport's request and response, the body stream, the error raised
    client: ModuleType
    #: httpcore or httpcore2: the connection pool, its network backend, its errors
    core: ModuleType
    #: the pool's errors as the client's, most specific first (what httpx's own transport
    #: does; its mapping helper is private)
    errors: tuple[tuple[type[Exception], type[Exception]], ...] = field(init=False)

    def __post_init__(self) -> None:
        names = (
            "ConnectTimeout",
            "ReadTimeout",
            "WriteTimeout",
            "PoolTimeout",
            "TimeoutException",
            "ConnectError",
            "ReadError",
            "WriteError",
            "NetworkError",
            "UnsupportedProtocol",
            "LocalProtocolError",
            "RemoteProtocolError",
            "ProtocolError",
        )
        errors = tuple((getattr(self.core, n), getattr(self.client, n)) for n in names)
        object.__setattr__(self, "errors", errors)

    @contextlib.contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Re-raise a pool error as its client-library twin."""
        try:
            yield
        except Exception as exc:
            for core, mapped in self.errors:
                if isinstance(exc, core):
                    raise mapped(str(exc)) from exc
            raise


_HTTPX: Final = _Stack(client=httpx, core=httpcore)
_HTTPX2: Final = _Stack(client=httpx2, core=httpcore2)


class _PinningBackend(httpcore.AsyncNetworkBackend, httpcore2.AsyncNetworkBackend):
    """Opens every connection itself: resolves the host once, refuses unless every address is
    admitted, then connects to a checked address. The pool never resolves on its own, so no
    second lookup can answer differently (DNS rebinding); TLS still verifies the hostname,
    because the pool passes the URL's host as server_hostname to start_tls."""

    def __init__(self, policy: OutboundPolicy, stack: _Stack) -> None:
        self._policy = policy
        self._core = stack.core
        self._inner = stack.core.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the pool's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> Any:  # the stack's AsyncNetworkStream
        addresses = await self._checked_addresses(host, port, timeout)
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
            except (self._core.ConnectError, self._core.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def _checked_addresses(
        self, host: str, port: int, connect_timeout: float | None
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
                raise self._core.ConnectTimeout(f"resolving {host} timed out") from None
            except (OSError, UnicodeError) as exc:  # UnicodeError: a label IDNA refuses
                raise self._core.ConnectError(f"cannot resolve {host}: {exc}") from exc
            if not addresses:
                raise self._core.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            reason = _refusal(address, host, self._policy)
            if reason is not None:
                shown = host if literal is not None else f"{host} (which resolves to {address})"
                raise OutboundBlocked(
                    f"outbound call to {shown}:{port} refused: address {address} is {reason}; "
                    f"{ALLOW_LIST_HINT}"
                )
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the pool's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> NoReturn:
        raise OutboundBlocked("outbound calls never use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx.AsyncByteStream, httpx2.AsyncByteStream):
    """The response body, refused past max_response_bytes or past the exchange's deadline.
    A body stream of both client libraries (each checks that a response's stream is its own)."""

    def __init__(
        self, response: Any, stack: _Stack, origin: str, limit: int, deadline: float, budget: float
    ) -> None:
        self._response = response  # the pool's Response
        self._stack = stack
        self._origin = origin
        self._limit = limit
        self._deadline = deadline
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts = self._response.aiter_stream()
        received = 0
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    with self._stack.mapped_errors():
                        part = await anext(parts, None)
            except TimeoutError:
                # The client library's timeout, so callers handle it like any other (retry, 504).
                message = _total_timeout_message(self._origin, self._budget)
                raise self._stack.client.TimeoutException(message) from None
            if part is None:
                return
            received += len(part)
            if received > self._limit:
                raise _too_large(self._origin, self._limit)
            yield part  # outside the timeout scope: a cancel scope must not span a yield

    async def aclose(self) -> None:
        with self._stack.mapped_errors():
            await self._response.aclose()


class _Guard:
    """The transport of either stack: applies an OutboundPolicy to every request it sends.
    `GuardedTransport` and `GuardedHttpx2Transport` give it its stack, its defaults and the
    library's transport interface."""

    _stack: ClassVar[_Stack]
    #: whether a URL may carry user:password@ (sent as Basic auth to whatever host it names)
    _allow_credentials: ClassVar[bool]

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | httpx2.Limits | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        client = self._stack.client
        limits = limits or client.Limits(max_connections=100, max_keepalive_connections=20)
        self._policy = policy
        self._budget = timeout_seconds or policy.timeout_seconds
        self._pool = self._stack.core.AsyncConnectionPool(
            # Explicit, so SSL_CERT_FILE / SSL_CERT_DIR from the environment do not apply.
            ssl_context=ssl_context or client.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinningBackend(policy, self._stack),
        )

    async def handle_async_request(self, request: Any) -> Any:
        """The stack's Response to the stack's Request (their classes differ in name only)."""
        policy, client, core = self._policy, self._stack.client, self._stack.core
        origin = _refuse_url(str(request.url), policy, allow_credentials=self._allow_credentials)
        assert isinstance(request.stream, client.AsyncByteStream)
        core_request = core.Request(
            method=request.method,
            url=core.URL(
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
                with self._stack.mapped_errors():
                    response = await self._pool.handle_async_request(core_request)
        except TimeoutError:
            message = _total_timeout_message(origin, self._budget)
            raise client.TimeoutException(message) from None
        problem = _head_problem(
            response.headers,
            origin,
            policy.max_response_bytes,
            head=request.method == "HEAD",
        )
        if problem is not None:
            await response.aclose()
            raise problem
        limit = policy.max_response_bytes
        return client.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CappedStream(response, self._stack, origin, limit, deadline, self._budget),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


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


def _total_timeout_message(origin: str, budget: float) -> str:
    return f"{origin} did not complete within {budget:g} s"


def _too_large(origin: str, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"response from {origin} exceeds {limit} bytes")


C = TypeVar("C")


def _client(
    make: Callable[..., C],
    transport: _Guard,
    policy: OutboundPolicy,
    headers: dict[str, str] | None,
    **options: Any,
) -> C:
    return make(
        transport=transport,
        # Environment proxies (HTTP(S)_PROXY, ALL_PROXY) would route around the guard, and
        # .netrc credentials must not be sent to workspace-chosen hosts.
        trust_env=False,
        follow_redirects=policy.max_redirects > 0,
        max_redirects=policy.max_redirects,
        headers={"User-Agent": "chatsvc", **(headers or {})},
        **options,
    )


# -- the transports and clients of each stack ------------------------------------------------


class GuardedTransport(_Guard, httpx.AsyncBaseTransport):
    """An httpx transport that applies an OutboundPolicy to every request it sends. Use it
    through `guarded_client`: a client of your own with trust_env=True would mount proxy
    transports for HTTP(S)_PROXY that bypass this one."""

    _stack = _HTTPX
    _allow_credentials = True


class GuardedHttpx2Transport(_Guard, httpx2.AsyncBaseTransport):
    """`GuardedTransport` for httpx2 clients (the `mcp` SDK's). It also refuses URLs that carry
    credentials, and its time cap may be longer than the policy's (`timeout_seconds`): an MCP
    session keeps one response (an SSE stream) open while it lasts, and its caller puts its
    own deadlines on connect and each call."""

    _stack = _HTTPX2
    _allow_credentials = False


def guarded_client(
    policy: OutboundPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    """The httpx client for workspace-initiated calls. Build one in the lifespan and close it
    there. `ssl_context` replaces the certifi CA bundle (a private CA; tests)."""
    transport = GuardedTransport(policy, ssl_context=ssl_context, limits=limits)
    timeout = httpx.Timeout(policy.timeout_seconds)
    return _client(httpx.AsyncClient, transport, policy, headers, timeout=timeout)


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
    transport = GuardedHttpx2Transport(
        policy, ssl_context=ssl_context, limits=limits, timeout_seconds=timeout_seconds
    )
    timeout = timeout or httpx2.Timeout(timeout_seconds or policy.timeout_seconds)
    return _client(
        httpx2.AsyncClient, transport, policy, headers, timeout=timeout, event_hooks=event_hooks
    )
