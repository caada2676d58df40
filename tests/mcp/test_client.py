"""The MCP client against a real MCP server on loopback: listing and calling over streamable
HTTP, the SSE fallback for an older server, protocol pins, the tool-list cache, deadlines on
connect, list and call, result caps, and failures that become clear 400/502/504 errors."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address
from typing import Any

import pytest

from chatsvc.kit import outbound
from chatsvc.kit.errors import UpstreamError, UpstreamTimeout
from chatsvc.kit.outbound import IPAddress, OutboundBlocked, OutboundPolicy
from chatsvc.tools.mcp_client import McpClient, McpEndpoint
from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.mcp import SHORT_CALL, SHORT_CONNECT, loopback_policy

TOOLS = ["add", "echo", "slow", "fail", "big"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, str]) -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(table[host])]

    monkeypatch.setattr(outbound, "resolve", resolve)


# -- listing and calling -------------------------------------------------------------------


async def test_lists_the_remote_tools_with_their_input_schema(
    client: McpClient, fake: FakeMcp
) -> None:
    tools = await client.list_tools(1, McpEndpoint(fake.url))
    assert [t.name for t in tools] == TOOLS
    add = tools[0]
    assert add.description == "Add two integers."
    assert add.input_schema["type"] == "object"
    assert add.input_schema["required"] == ["a", "b"]
    assert add.input_schema["properties"]["a"]["type"] == "integer"


async def test_calls_a_tool_and_reads_its_text(client: McpClient, fake: FakeMcp) -> None:
    endpoint = McpEndpoint(fake.url)
    result = await client.call_tool(endpoint, "add", {"a": 2, "b": 40})
    assert (result.is_error, result.text) == (False, "42")
    assert (await client.call_tool(endpoint, "echo", {"text": "héllo"})).text == "héllo"
    assert fake.tool_calls == [("add", {"a": 2, "b": 40}), ("echo", {"text": "héllo"})]


async def test_a_failing_tool_is_an_error_result_not_an_exception(
    client: McpClient, fake: FakeMcp
) -> None:
    endpoint = McpEndpoint(fake.url)
    failed = await client.call_tool(endpoint, "fail", {})
    assert failed.is_error
    assert "fail" in failed.text
    unknown = await client.call_tool(endpoint, "nope", {})
    assert unknown.is_error
    assert "nope" in unknown.text
    invalid = await client.call_tool(endpoint, "add", {"a": "two"})
    assert invalid.is_error
    assert "validation" in invalid.text


async def test_the_client_identifies_itself_and_sends_the_endpoint_headers(
    client: McpClient, fake: FakeMcp
) -> None:
    endpoint = McpEndpoint(
        fake.url,
        headers={"X-Tenant": "acme"},
        protocol_version="2025-06-18",
        client_name="helpdesk",
        client_version="7.1",
    )
    await client.call_tool(endpoint, "echo", {"text": "x"})
    assert all(r.headers.get("x-tenant") == "acme" for r in fake.requests)
    # A handshake-era revision: the initialize handshake, which names the client.
    initialize = next(r for r in fake.requests if "initialize" in r.rpc_methods)
    assert initialize.path == "/mcp"
    assert "server/discover" not in [m for r in fake.requests for m in r.rpc_methods]
    assert all(r.headers["user-agent"] == "chatsvc" for r in fake.requests)


async def test_a_result_longer_than_the_cap_is_cut(fake: FakeMcp) -> None:
    client = McpClient(loopback_policy(fake), max_result_chars=1000)
    result = await client.call_tool(McpEndpoint(fake.url), "big", {"chars": 5000})
    assert not result.is_error
    assert result.text.startswith("x" * 1000)
    assert result.text.endswith("[truncated: 4000 more characters]")
    assert len(result.text) < 1100


# -- transports and protocol revisions -----------------------------------------------------


async def test_an_older_server_is_reached_over_sse_and_the_choice_is_remembered(
    client: McpClient, fake: FakeMcp
) -> None:
    endpoint = McpEndpoint(fake.sse_url)
    tools = await client.list_tools(1, endpoint)
    assert [t.name for t in tools] == TOOLS
    first = [(r.method, r.path) for r in fake.requests]
    # streamable HTTP first (refused with 405), then the SSE stream and its message posts
    assert first[0] == ("POST", "/sse")
    assert ("GET", "/sse") in first
    assert ("POST", "/messages/") in first
    fake.reset()
    result = await client.call_tool(endpoint, "add", {"a": 1, "b": 1})
    assert result.text == "2"
    # the second time goes straight to SSE
    assert [r.method for r in fake.requests if r.path == "/sse"] == ["GET"]


async def test_protocol_2024_11_05_goes_to_sse_at_once(client: McpClient, fake: FakeMcp) -> None:
    endpoint = McpEndpoint(fake.sse_url, protocol_version="2024-11-05")
    assert (await client.call_tool(endpoint, "echo", {"text": "old"})).text == "old"
    assert not any(r.method == "POST" and r.path == "/sse" for r in fake.requests)


async def test_a_modern_pin_skips_the_probe(client: McpClient, fake: FakeMcp) -> None:
    endpoint = McpEndpoint(fake.url, protocol_version="2026-07-28")
    assert (await client.call_tool(endpoint, "add", {"a": 1, "b": 2})).text == "3"
    methods = [m for r in fake.requests for m in r.rpc_methods]
    assert "server/discover" not in methods
    assert "initialize" not in methods


async def test_a_modern_server_is_probed_once_then_adopted(
    client: McpClient, fake: FakeMcp
) -> None:
    endpoint = McpEndpoint(fake.url)
    await client.call_tool(endpoint, "echo", {"text": "1"})
    await client.call_tool(endpoint, "echo", {"text": "2"})
    assert fake.rpc_count("server/discover") == 1
    assert fake.rpc_count("tools/call") == 2


# -- the cache -----------------------------------------------------------------------------


async def test_a_second_list_is_served_from_the_cache_and_refresh_asks_again(
    fake: FakeMcp,
) -> None:
    clock = Clock()
    client = McpClient(loopback_policy(fake), cache_seconds=300, clock=clock)
    endpoint = McpEndpoint(fake.url)
    await client.list_tools(7, endpoint)
    assert fake.rpc_count("tools/list") == 1
    sent = len(fake.requests)
    assert [t.name for t in await client.list_tools(7, endpoint)] == TOOLS
    assert len(fake.requests) == sent  # nothing reached the server
    fake.add_tool(lambda: "pong", name="ping")
    try:
        refreshed = await client.list_tools(7, endpoint, refresh=True)
        assert [t.name for t in refreshed] == [*TOOLS, "ping"]
        assert fake.rpc_count("tools/list") == 2
        # the refreshed list is what the cache holds now
        assert len(await client.list_tools(7, endpoint)) == 6
        assert fake.rpc_count("tools/list") == 2
        # ... until it expires
        clock.now += 301
        await client.list_tools(7, endpoint)
        assert fake.rpc_count("tools/list") == 3
    finally:
        fake.remove_tool("ping")


async def test_the_cache_key_is_the_server_and_its_endpoint(fake: FakeMcp) -> None:
    client = McpClient(loopback_policy(fake))
    await client.list_tools(1, McpEndpoint(fake.url))
    await client.list_tools(2, McpEndpoint(fake.url))  # another server
    assert fake.rpc_count("tools/list") == 2
    # an edited server (other headers, e.g. a rotated secret) is read again
    await client.list_tools(1, McpEndpoint(fake.url, headers={"Authorization": "Bearer new"}))
    assert fake.rpc_count("tools/list") == 3
    client.invalidate(2)
    await client.list_tools(2, McpEndpoint(fake.url))
    assert fake.rpc_count("tools/list") == 4


async def test_concurrent_misses_make_one_call(fake: FakeMcp) -> None:
    client = McpClient(loopback_policy(fake))
    lists = await asyncio.gather(*(client.list_tools(3, McpEndpoint(fake.url)) for _ in range(5)))
    assert all([t.name for t in found] == TOOLS for found in lists)
    assert fake.rpc_count("tools/list") == 1


async def test_cache_seconds_zero_disables_the_cache(fake: FakeMcp) -> None:
    client = McpClient(loopback_policy(fake), cache_seconds=0)
    await client.list_tools(1, McpEndpoint(fake.url))
    await client.list_tools(1, McpEndpoint(fake.url))
    assert fake.rpc_count("tools/list") == 2


async def test_failures_are_not_cached(client: McpClient, fake: FakeMcp) -> None:
    fake.configure(fail_status=503)
    with pytest.raises(UpstreamError):
        await client.list_tools(1, McpEndpoint(fake.url))
    fake.configure(fail_status=None)
    assert len(await client.list_tools(1, McpEndpoint(fake.url))) == len(TOOLS)


# -- deadlines -----------------------------------------------------------------------------


@pytest.mark.parametrize("url_of", ["url", "sse_url"])
async def test_a_server_that_hangs_on_connect_hits_the_connect_deadline(
    short_client: McpClient, fake: FakeMcp, url_of: str
) -> None:
    fake.configure(hang_on={"*"})
    with pytest.raises(UpstreamTimeout) as caught:
        await short_client.list_tools(1, McpEndpoint(getattr(fake, url_of)))
    assert caught.value.code == "upstream_timeout"
    assert f"did not respond within {SHORT_CONNECT:g} s while connecting" in caught.value.message


async def test_a_list_that_hangs_hits_the_call_deadline(
    short_client: McpClient, fake: FakeMcp
) -> None:
    fake.configure(hang_on={"tools/list"})
    with pytest.raises(UpstreamTimeout, match=f"within {SHORT_CALL:g} s while listing tools"):
        await short_client.list_tools(1, McpEndpoint(fake.url))


async def test_a_slow_tool_hits_the_call_deadline(short_client: McpClient, fake: FakeMcp) -> None:
    with pytest.raises(UpstreamTimeout, match="while calling tool 'slow'"):
        await short_client.call_tool(McpEndpoint(fake.url), "slow", {"seconds": 30})
    # the client is still usable afterwards
    result = await short_client.call_tool(McpEndpoint(fake.url), "add", {"a": 1, "b": 1})
    assert result.text == "2"


async def test_a_slow_tool_within_the_deadline_answers(client: McpClient, fake: FakeMcp) -> None:
    result = await client.call_tool(McpEndpoint(fake.url), "slow", {"seconds": 0.2})
    assert result.text == "slept 0.2 s"


# -- failures ------------------------------------------------------------------------------


async def test_http_errors_name_the_status_and_never_the_headers(
    client: McpClient, fake: FakeMcp, caplog: pytest.LogCaptureFixture
) -> None:
    fake.configure(required_headers={"authorization": "Bearer right"})
    endpoint = McpEndpoint(fake.url, headers={"Authorization": "Bearer wrong-s3cret"})
    with pytest.raises(UpstreamError) as caught:
        await client.call_tool(endpoint, "add", {"a": 1, "b": 2})
    assert caught.value.code == "mcp_error"
    assert "answered HTTP 401 Unauthorized while connecting" in caught.value.message
    assert "wrong-s3cret" not in caught.value.message
    assert "wrong-s3cret" not in caplog.text
    # 401 is not a transport mismatch: no SSE attempt
    assert not any(r.path == "/sse" for r in fake.requests)
    right = McpEndpoint(fake.url, headers={"Authorization": "Bearer right"})
    assert (await client.call_tool(right, "add", {"a": 1, "b": 2})).text == "3"


async def test_a_server_error_on_a_call_is_a_502(client: McpClient, fake: FakeMcp) -> None:
    endpoint = McpEndpoint(fake.url)
    await client.list_tools(1, endpoint)  # connected once: the next session adopts, no probe
    fake.configure(fail_status=500)
    with pytest.raises(UpstreamError, match="answered HTTP 500 Internal Server Error"):
        await client.call_tool(endpoint, "add", {"a": 1, "b": 2})


async def test_an_unreachable_server_is_a_502(fake: FakeMcp) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = McpClient(loopback_policy(fake, allowed_ports={port}))
    with pytest.raises(UpstreamError, match="ConnectError"):
        await client.list_tools(1, McpEndpoint(f"http://127.0.0.1:{port}/mcp"))


async def test_a_url_that_is_not_an_mcp_endpoint_is_a_502(client: McpClient, fake: FakeMcp) -> None:
    with pytest.raises(UpstreamError, match="answered HTTP 404 Not Found while connecting"):
        await client.list_tools(1, McpEndpoint(f"{fake.base_url}/nothing-here"))


# -- the outbound policy (SSRF) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/mcp", "link-local"),
        ("https://[::ffff:127.0.0.1]/mcp", "IPv6 form of 127.0.0.1, loopback"),
        ("https://2130706433/mcp", "loopback"),
        ("https://0x7f000001/mcp", "loopback"),
        ("https://10.0.0.1/mcp", "private"),
        ("http://mcp.example.com/mcp", "scheme 'http' is not allowed"),
        ("https://alice:hunter2@mcp.example.com/mcp", "carries credentials"),
    ],
)
async def test_the_default_policy_refuses_before_connecting(url: str, why: str) -> None:
    client = McpClient(OutboundPolicy())
    with pytest.raises(OutboundBlocked, match=why) as caught:
        await client.call_tool(McpEndpoint(url), "add", {})
    assert "hunter2" not in caught.value.message
    with pytest.raises(OutboundBlocked, match=why):
        await client.list_tools(1, McpEndpoint(url))


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect(
    monkeypatch: pytest.MonkeyPatch, fake: FakeMcp
) -> None:
    fake_dns(monkeypatch, {"tools.example.com": "10.0.0.7", "mcp.corp.example": "127.0.0.1"})
    client = McpClient(loopback_policy(fake))
    with pytest.raises(OutboundBlocked, match=r"tools\.example\.com.*10\.0\.0\.7 is private"):
        await client.list_tools(1, McpEndpoint(fake.url_for("tools.example.com")))
    assert fake.requests == []
    # a name the operator allow-lists is admitted, and the Host header keeps the name
    client = McpClient(loopback_policy(fake, allow_list=["mcp.corp.example"]))
    assert len(await client.list_tools(1, McpEndpoint(fake.url_for("mcp.corp.example")))) == 5
    assert fake.requests[0].headers["host"] == f"mcp.corp.example:{fake.port}"


async def test_a_redirect_to_a_private_address_is_not_followed(
    client: McpClient, fake: FakeMcp
) -> None:
    fake.configure(redirect_to="http://169.254.169.254/latest/meta-data?token=q")
    with pytest.raises(UpstreamError) as caught:
        await client.list_tools(1, McpEndpoint(fake.url))
    message = caught.value.message
    assert "redirect (HTTP 307 to http://169.254.169.254:80, not followed)" in message
    assert "token=q" not in message and "meta-data" not in message
    assert len(fake.requests) >= 1
    assert all(r.path == "/mcp" for r in fake.requests)  # nothing went anywhere else


async def test_a_redirect_is_not_followed_even_when_the_policy_allows_redirects(
    fake: FakeMcp,
) -> None:
    client = McpClient(loopback_policy(fake, max_redirects=3))
    fake.configure(redirect_to="http://127.0.0.2:80/mcp")
    with pytest.raises(UpstreamError, match="not followed"):
        await client.list_tools(1, McpEndpoint(fake.url))


def test_endpoint_digest_changes_with_every_setting() -> None:
    base: dict[str, Any] = {"url": "https://a.example/mcp"}
    digests = {
        McpEndpoint(**base).digest(),
        McpEndpoint(**base, headers={"a": "1"}).digest(),
        McpEndpoint(**base, headers={"a": "2"}).digest(),
        McpEndpoint(**base, protocol_version="2025-06-18").digest(),
        McpEndpoint(**base, client_name="x").digest(),
        McpEndpoint(**base, client_version="2").digest(),
        McpEndpoint("https://b.example/mcp").digest(),
    }
    assert len(digests) == 7


async def test_a_key_in_the_url_stays_out_of_logs_and_errors(
    client: McpClient, fake: FakeMcp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="httpx2")
    caplog.set_level("INFO")
    endpoint = McpEndpoint(f"{fake.url}?key=Q-S3CRET")
    assert (await client.call_tool(endpoint, "echo", {"text": "ok"})).text == "ok"
    assert fake.requests[0].path == "/mcp"
    assert "HTTP Request: POST" in caplog.text  # httpx2 logged the requests ...
    assert f"http://127.0.0.1:{fake.port}" in caplog.text
    # ... without the path or query
    with pytest.raises(UpstreamError) as caught:
        await client.list_tools(1, McpEndpoint(f"{fake.base_url}/k-P4TH-S3CRET/mcp"))
    assert "HTTP 404" in caught.value.message
    for secret in ("Q-S3CRET", "P4TH-S3CRET"):
        assert secret not in caplog.text
        assert secret not in caught.value.message
