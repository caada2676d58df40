"""The guarded outbound client against real servers on loopback: what it refuses (schemes, ports,
non-public addresses however written, hostnames resolving to them, redirects, oversized or
compressed bodies, slow peers), what an operator's allow-list admits, that environment proxies are
ignored, and that a connection goes to the one address that was checked, TLS still verifying
the hostname."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator
from ipaddress import ip_address

import httpx
import pytest

from chatsvc.config import Settings
from chatsvc.kit import outbound
from chatsvc.kit.errors import Invalid
from chatsvc.kit.outbound import (
    IPAddress,
    OutboundBlocked,
    OutboundPolicy,
    ResponseTooLarge,
    check_url,
    guarded_client,
    url_problem,
)
from tests.fakes.callback_receiver import CallbackReceiver, running_callback_receiver

LOOPBACK = ["127.0.0.1/32"]


def loopback_policy(port: int, **changes: object) -> OutboundPolicy:
    """What tests run with: the loopback receiver admitted by the allow-list, on its port."""
    values: dict[str, object] = {
        "allowed_schemes": {"http", "https"},
        "allowed_ports": {port},
        "allow_list": LOOPBACK,
    }
    values.update(changes)
    return OutboundPolicy(**values)  # type: ignore[arg-type]


def fake_dns(
    monkeypatch: pytest.MonkeyPatch, *answers: dict[str, list[str]]
) -> list[tuple[str, int]]:
    """Replace the guard's resolver: the n-th lookup answers from answers[n] (the last one
    repeats). Returns the list of lookups made."""
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        table = answers[min(len(calls), len(answers) - 1)]
        calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(a) for a in table[host]]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return calls


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with running_callback_receiver() as server:
        yield server


# -- refused before any connection ---------------------------------------------------------


async def test_http_is_refused_when_only_https_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_dns(monkeypatch, {"example.com": ["93.184.216.34"]})
    policy = OutboundPolicy()
    with pytest.raises(OutboundBlocked, match="scheme 'http' is not allowed"):
        check_url("http://example.com/hook", policy)
    async with guarded_client(policy) as client:
        with pytest.raises(OutboundBlocked, match="scheme 'http' is not allowed"):
            await client.get("http://example.com/hook")
    assert calls == []  # refused before any lookup
    assert check_url("https://example.com/hook", policy) == "https://example.com/hook"


@pytest.mark.parametrize(
    "url", ["https://example.com:8443/", "https://example.com:80/", "https://example.com:22/"]
)
def test_ports_other_than_the_allowed_ones_are_refused(url: str) -> None:
    with pytest.raises(OutboundBlocked, match=r"port \d+ is not allowed \(allowed: 443\)"):
        check_url(url, OutboundPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1%2f/",
        "https://a..b/",
        "https://-a.example.com/",
        "https://a-.example.com/",
        "https://exa mple.com/",
        f"https://{'a' * 64}.example.com/",
    ],
)
def test_hosts_that_are_not_dns_names_are_refused(url: str) -> None:
    with pytest.raises(OutboundBlocked, match="is not a valid DNS name"):
        check_url(url, OutboundPolicy())


@pytest.mark.parametrize(
    "url", ["https://bücher.de/", "https://a_b.example.com/", "https://example.com./hook"]
)
def test_international_and_underscored_names_are_dns_names(url: str) -> None:
    assert check_url(url, OutboundPolicy()) == url


def test_default_ports_follow_the_allowed_schemes() -> None:
    assert OutboundPolicy().allowed_ports == {443}
    assert OutboundPolicy(allowed_schemes={"http", "https"}).allowed_ports == {80, 443}
    assert check_url("https://example.com:443/", OutboundPolicy())


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1", "loopback"),  # shorthand the socket layer expands
        ("2130706433", "loopback"),  # 127.0.0.1 as one integer
        ("0x7f.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "this network"),  # noqa: S104 - refused, not bound
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("[::1]", "loopback"),
        ("[::]", "unspecified"),
        ("[fd00::1]", "unique local"),
        ("[fe80::1]", "link-local"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:127.0.0.1]", "IPv6 form of 127.0.0.1, loopback"),
        ("[::ffff:169.254.169.254]", "IPv6 form of 169.254.169.254, link-local"),
        ("[::ffff:10.0.0.1]", "IPv6 form of 10.0.0.1, private"),
        ("[64:ff9b::a00:1]", "IPv6 form of 10.0.0.1"),  # NAT64
        ("[2002:7f00:1::1]", "IPv6 form of 127.0.0.1"),  # 6to4
        ("localhost", "local name"),
        ("api.localhost", "local name"),
        ("metadata.google.internal", "local name"),
        ("intranet", "not a public DNS name"),
    ],
)
async def test_non_public_hosts_are_refused(host: str, why: str) -> None:
    url = f"https://{host}/hook"
    assert why in (url_problem(url, OutboundPolicy()) or "")
    with pytest.raises(OutboundBlocked, match=why):
        check_url(url, OutboundPolicy())
    # the client refuses the same, without touching the network
    async with guarded_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundBlocked, match=why):
            await client.get(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/",
        "https://[2606:4700:4700::1111]/",
        "https://[::ffff:8.8.8.8]/",  # an IPv6 form of a public address is public
        "https://example.com/",
        "https://EXAMPLE.com./path?q=1",
    ],
)
def test_public_hosts_pass(url: str) -> None:
    assert url_problem(url, OutboundPolicy()) is None


def test_refusals_never_show_credentials_paths_or_queries() -> None:
    url = "https://alice:hunter2@10.0.0.1/hooks/T0KEN-IN-PATH?token=q-secret#frag"
    with pytest.raises(OutboundBlocked) as caught:
        check_url(url, OutboundPolicy())
    message = str(caught.value)
    assert "10.0.0.1" in message
    assert "private" in message
    for secret in ("alice", "hunter2", "T0KEN-IN-PATH", "q-secret", "frag"):
        assert secret not in message
    assert isinstance(caught.value, Invalid)  # a face answers 400 with this code
    assert caught.value.code == "outbound_blocked"


def test_invalid_urls_are_refused() -> None:
    for url in ("not a url", "https://", "ftp://example.com/", "//example.com/"):
        with pytest.raises(OutboundBlocked):
            check_url(url, OutboundPolicy())


def test_allow_private_admits_private_ranges_but_never_link_local() -> None:
    policy = OutboundPolicy(allow_private=True)
    for url in ("https://10.0.0.1/", "https://[fd00::1]/", "https://100.64.0.1/", "https://db/"):
        assert url_problem(url, policy) is None
    assert "link-local" in (url_problem("https://169.254.169.254/", policy) or "")
    assert "link-local" in (url_problem("https://[fe80::1]/", policy) or "")
    # ... which an explicit allow-list entry still can
    assert url_problem("https://169.254.10.10/", OutboundPolicy(allow_list=["169.254.20.0/24"]))
    assert not url_problem("https://169.254.10.10/", OutboundPolicy(allow_list=["169.254.0.0/16"]))


def test_the_policy_comes_from_settings() -> None:
    default = OutboundPolicy.from_settings(Settings())
    assert default == OutboundPolicy()
    assert default.allowed_schemes == {"https"}
    assert default.allowed_ports == {443}
    assert not default.allow_private
    assert default.max_response_bytes == 10 * 1024 * 1024
    assert default.timeout_seconds == 10.0
    assert default.max_redirects == 0
    custom = OutboundPolicy.from_settings(
        Settings(
            outbound_allowed_schemes=["http", "https"],
            outbound_allowed_ports=[8080],
            outbound_allow_list=["127.0.0.1/32", "MCP.corp.example"],
            outbound_max_redirects=2,
        )
    )
    assert custom.allowed_ports == {8080}
    assert url_problem("http://127.0.0.1:8080/", custom) is None
    assert url_problem("http://mcp.corp.example:8080/", custom) is None


# -- DNS: every address checked, the connection pinned to it -------------------------------


async def test_a_hostname_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, {"evil.example": ["10.0.0.7"], "mixed.example": ["93.184.216.34", "::1"]})
    assert url_problem("https://evil.example/", OutboundPolicy()) is None  # no DNS in check_url
    async with guarded_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundBlocked, match=r"evil\.example.*10\.0\.0\.7 is private"):
            await client.get("https://evil.example/hook?key=s3cret")
        # one non-public address among public ones is enough to refuse
        with pytest.raises(OutboundBlocked, match=r"::1 is loopback"):
            await client.get("https://mixed.example/")


async def test_a_name_that_does_not_resolve_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, {})
    async with guarded_client(OutboundPolicy()) as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.example"):
            await client.get("https://nowhere.example/")


async def test_the_allow_list_admits_loopback_for_tests(receiver: CallbackReceiver) -> None:
    async with guarded_client(loopback_policy(receiver.port, allow_list=[])) as client:
        with pytest.raises(OutboundBlocked, match="loopback"):
            await client.get(receiver.url)
    assert receiver.deliveries == []
    async with guarded_client(loopback_policy(receiver.port)) as client:
        response = await client.post(receiver.url, content=b"hello")
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert receiver.deliveries[0].body == b"hello"


async def test_the_allow_list_admits_a_hostname(
    monkeypatch: pytest.MonkeyPatch, receiver: CallbackReceiver
) -> None:
    fake_dns(monkeypatch, {"mcp.corp.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    policy = loopback_policy(receiver.port, allow_list=["mcp.corp.example"])
    async with guarded_client(policy) as client:
        assert (await client.get(receiver.url_for("mcp.corp.example"))).status_code == 200
        with pytest.raises(OutboundBlocked, match="loopback"):
            await client.get(receiver.url_for("other.example"))
    assert receiver.deliveries[0].headers["host"] == f"mcp.corp.example:{receiver.port}"


async def test_the_connection_goes_to_the_checked_address_resolved_once(
    monkeypatch: pytest.MonkeyPatch, receiver: CallbackReceiver
) -> None:
    # A rebinding name: public-looking first, then an address that must never be reached.
    calls = fake_dns(
        monkeypatch, {"rebind.example": ["127.0.0.1"]}, {"rebind.example": ["10.9.9.9"]}
    )
    url = receiver.url_for("rebind.example")
    async with guarded_client(loopback_policy(receiver.port)) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert calls == [("rebind.example", receiver.port)]  # exactly one lookup
        # The kept-alive connection is the checked one: no second lookup, same peer.
        assert (await client.get(url)).status_code == 200
        assert len(calls) == 1
    assert [d.headers["host"] for d in receiver.deliveries] == [
        f"rebind.example:{receiver.port}"
    ] * 2
    # A new connection looks up again, and is refused on the new answer.
    async with guarded_client(loopback_policy(receiver.port)) as client:
        with pytest.raises(OutboundBlocked, match=r"10\.9\.9\.9 is private"):
            await client.get(url)
    assert len(calls) == 2
    assert len(receiver.deliveries) == 2


async def test_tls_verifies_the_hostname_not_the_pinned_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_callback_receiver(tls=True, tls_hostname="callback.test") as receiver:
        fake_dns(monkeypatch, {"callback.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
        policy = loopback_policy(receiver.port, allowed_schemes={"https"})
        async with guarded_client(policy, ssl_context=receiver.client_ssl_context()) as client:
            response = await client.post(receiver.url_for("callback.test"), content=b"{}")
            assert response.status_code == 200
            # Same address, but the certificate is not for this name: the handshake fails.
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(receiver.url_for("impostor.test"))
        assert [d.headers["host"] for d in receiver.deliveries] == [
            f"callback.test:{receiver.port}"
        ]


# -- redirects, proxies, sizes, time -------------------------------------------------------


async def test_redirects_are_not_followed(receiver: CallbackReceiver) -> None:
    receiver.configure(status=302, headers={"location": "http://169.254.169.254/latest/meta-data"})
    async with guarded_client(loopback_policy(receiver.port)) as client:
        response = await client.get(receiver.url)
        assert response.status_code == 302  # handed back as is, not followed
        assert response.headers["location"] == "http://169.254.169.254/latest/meta-data"
        assert len(receiver.deliveries) == 1
        # a caller asking to follow is refused too (max_redirects=0)
        with pytest.raises(httpx.TooManyRedirects):
            await client.get(receiver.url, follow_redirects=True)
    assert len(receiver.deliveries) == 2


async def test_when_redirects_are_allowed_every_hop_is_checked(receiver: CallbackReceiver) -> None:
    receiver.configure(status=302, headers={"location": "http://169.254.169.254/latest/meta-data"})
    policy = loopback_policy(receiver.port, max_redirects=3, allowed_ports={receiver.port, 80})
    async with guarded_client(policy) as client:
        with pytest.raises(OutboundBlocked, match=r"169\.254\.169\.254.*link-local"):
            await client.get(receiver.url)
    assert len(receiver.deliveries) == 1


async def test_environment_proxies_are_ignored(
    monkeypatch: pytest.MonkeyPatch, receiver: CallbackReceiver
) -> None:
    async with running_callback_receiver() as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # The variables are live: a default httpx client sends through the "proxy".
        async with httpx.AsyncClient() as plain:
            await plain.get(receiver.url)
        assert len(proxy.deliveries) == 1
        async with guarded_client(loopback_policy(receiver.port)) as client:
            assert (await client.get(receiver.url)).status_code == 200
        assert len(proxy.deliveries) == 1  # nothing more went through the proxy
        assert len(receiver.deliveries) == 1  # the guarded client went straight there


@pytest.mark.parametrize("stream_body", [False, True], ids=["content-length", "chunked"])
async def test_bodies_over_the_cap_are_refused(
    receiver: CallbackReceiver, stream_body: bool
) -> None:
    policy = loopback_policy(receiver.port, max_response_bytes=100_000)
    async with guarded_client(policy) as client:
        receiver.configure(body=b"x" * 100_000, stream_body=stream_body)
        assert len((await client.get(receiver.url)).content) == 100_000  # at the cap: fine
        receiver.configure(body=b"x" * 300_001)
        with pytest.raises(ResponseTooLarge, match="exceeds 100000 bytes"):
            await client.get(receiver.url)
        # streamed reading stops at the cap too (at the headers when they announce the size)
        with pytest.raises(ResponseTooLarge):
            async with client.stream("GET", receiver.url) as response:
                await response.aread()
        # the connection pool is still usable
        receiver.configure(body=b"ok", stream_body=False)
        assert (await client.get(receiver.url)).content == b"ok"


async def test_compressed_bodies_are_refused(receiver: CallbackReceiver) -> None:
    receiver.configure(body=gzip.compress(b"x" * 1000), headers={"content-encoding": "gzip"})
    async with guarded_client(loopback_policy(receiver.port)) as client:
        with pytest.raises(OutboundBlocked, match="'gzip'-encoded"):
            await client.get(receiver.url, headers={"Accept-Encoding": "gzip"})
    # the guard asked for an uncompressed body whatever the caller said
    assert receiver.deliveries[0].headers["accept-encoding"] == "identity"


async def test_the_whole_exchange_is_time_capped(receiver: CallbackReceiver) -> None:
    receiver.configure(delay=2.0)
    async with guarded_client(loopback_policy(receiver.port, timeout_seconds=0.2)) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(receiver.url)
