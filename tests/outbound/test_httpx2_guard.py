"""The httpx2 twin of the guarded client (what the `mcp` SDK is given) against real servers on
loopback: it shares every check of the httpx client (schemes, ports, addresses however written,
hostnames resolving to them, every redirect hop, size and time caps, environment proxies) and
also refuses URLs that carry credentials."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from ipaddress import ip_address

import httpx2
import pytest

from chatsvc.kit import outbound
from chatsvc.kit.outbound import (
    IPAddress,
    OutboundBlocked,
    OutboundPolicy,
    ResponseTooLarge,
    guarded_httpx2_client,
)
from tests.fakes.callback_receiver import CallbackReceiver, running_callback_receiver


def loopback_policy(port: int, **changes: object) -> OutboundPolicy:
    values: dict[str, object] = {
        "allowed_schemes": {"http", "https"},
        "allowed_ports": {port},
        "allow_list": ["127.0.0.1/32"],
    }
    values.update(changes)
    return OutboundPolicy(**values)  # type: ignore[arg-type]


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(a) for a in table[host]]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return calls


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with running_callback_receiver() as server:
        yield server


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:127.0.0.1]/", "IPv6 form of 127.0.0.1, loopback"),
        ("https://2130706433/", "loopback"),
        ("https://0x7f000001/", "loopback"),
        ("https://0x7f.0.0.1/", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://localhost/", "local name"),
        ("http://example.com/", "scheme 'http' is not allowed"),
        ("https://example.com:8443/", "port 8443 is not allowed"),
    ],
)
async def test_refuses_what_the_httpx_client_refuses(url: str, why: str) -> None:
    async with guarded_httpx2_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundBlocked, match=why):
            await client.get(url)


async def test_credentials_in_the_url_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_dns(monkeypatch, {"example.com": ["93.184.216.34"]})
    async with guarded_httpx2_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundBlocked, match="carries credentials") as caught:
            await client.get("https://alice:hunter2@example.com/mcp")
    assert "hunter2" not in caught.value.message
    assert "alice" not in caught.value.message
    assert calls == []  # refused before any lookup


async def test_a_hostname_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, {"evil.example": ["10.0.0.7"]})
    async with guarded_httpx2_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundBlocked, match=r"evil\.example.*10\.0\.0\.7 is private"):
            await client.get("https://evil.example/mcp")


async def test_a_name_that_does_not_resolve_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, {})
    async with guarded_httpx2_client(OutboundPolicy()) as client:
        with pytest.raises(httpx2.ConnectError, match=r"cannot resolve nowhere\.example"):
            await client.get("https://nowhere.example/")


async def test_the_allow_list_admits_loopback_and_the_connection_is_pinned(
    monkeypatch: pytest.MonkeyPatch, receiver: CallbackReceiver
) -> None:
    async with guarded_httpx2_client(loopback_policy(receiver.port, allow_list=[])) as client:
        with pytest.raises(OutboundBlocked, match="loopback"):
            await client.get(receiver.url)
    calls = fake_dns(monkeypatch, {"mcp.test": ["127.0.0.1"]})
    async with guarded_httpx2_client(loopback_policy(receiver.port)) as client:
        first = await client.post(receiver.url_for("mcp.test"), content=b"one")
        second = await client.post(receiver.url_for("mcp.test"), content=b"two")
    assert (first.status_code, second.status_code) == (200, 200)
    assert calls == ["mcp.test"]  # one lookup: the kept-alive connection is the checked one
    assert [d.body for d in receiver.deliveries] == [b"one", b"two"]
    assert receiver.deliveries[0].headers["host"] == f"mcp.test:{receiver.port}"
    assert receiver.deliveries[0].headers["accept-encoding"] == "identity"


async def test_every_redirect_hop_is_checked(receiver: CallbackReceiver) -> None:
    receiver.configure(status=307, headers={"location": "http://169.254.169.254/latest/meta-data"})
    async with guarded_httpx2_client(loopback_policy(receiver.port)) as client:
        response = await client.get(receiver.url)
        assert response.status_code == 307  # refused by default: handed back, not followed
    policy = loopback_policy(receiver.port, max_redirects=3, allowed_ports={receiver.port, 80})
    async with guarded_httpx2_client(policy) as client:
        with pytest.raises(OutboundBlocked, match=r"169\.254\.169\.254.*link-local"):
            await client.get(receiver.url)
    assert len(receiver.deliveries) == 2


async def test_bodies_over_the_cap_are_refused(receiver: CallbackReceiver) -> None:
    policy = loopback_policy(receiver.port, max_response_bytes=10_000)
    async with guarded_httpx2_client(policy) as client:
        receiver.configure(body=b"x" * 10_000, stream_body=True)
        assert len((await client.get(receiver.url)).content) == 10_000
        receiver.configure(body=b"x" * 10_001)
        with pytest.raises(ResponseTooLarge, match="exceeds 10000 bytes"):
            await client.get(receiver.url)


async def test_the_exchange_cap_can_be_longer_than_the_policy(receiver: CallbackReceiver) -> None:
    receiver.configure(delay=0.5)
    policy = loopback_policy(receiver.port, timeout_seconds=0.2)
    async with guarded_httpx2_client(policy) as client:
        with pytest.raises(httpx2.TimeoutException):
            await client.get(receiver.url)
    async with guarded_httpx2_client(policy, timeout_seconds=5) as client:
        assert (await client.get(receiver.url)).status_code == 200


async def test_environment_proxies_are_ignored(
    monkeypatch: pytest.MonkeyPatch, receiver: CallbackReceiver
) -> None:
    async with running_callback_receiver() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # The variables are live: a default httpx2 client sends through the "proxy".
        async with httpx2.AsyncClient() as plain:
            await plain.get(receiver.url)
        assert len(proxy.deliveries) == 1
        async with guarded_httpx2_client(loopback_policy(receiver.port)) as client:
            assert (await client.get(receiver.url)).status_code == 200
        assert len(proxy.deliveries) == 1  # nothing more went through the proxy
        assert len(receiver.deliveries) == 1
