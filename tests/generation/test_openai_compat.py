"""The OpenAI-compatible generator against a real streaming server on loopback: what it sends,
what it yields, how each upstream failure surfaces, and that closing it closes the upstream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from chatsvc.config import Environment, GeneratorApp, Settings
from chatsvc.generation.offline import OfflineGenerator
from chatsvc.generation.openai_compat import ERROR_MESSAGE_MAX_CHARS, OpenAICompatGenerator
from chatsvc.generation.registry import build_generators, describe_apps
from chatsvc.generation.types import (
    Finished,
    GenerationRequest,
    GeneratorEvent,
    PromptMessage,
    TextDelta,
)
from chatsvc.kit.errors import UpstreamError, UpstreamTimeout
from tests.fakes.openai_server import FakeOpenAI, running_openai_server

API_KEY = "sk-test-DO-NOT-LEAK-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with running_openai_server() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trust_env=False) as shared:
        yield shared


def _app(base_url: str, **fields: object) -> GeneratorApp:
    values: dict[str, object] = {
        "kind": "openai",
        "base_url": base_url,
        "model": "fake-model-1",
        "api_key": API_KEY,
        "timeout_seconds": 5.0,
        "connect_timeout_seconds": 2.0,
    }
    values.update(fields)
    return GeneratorApp.model_validate(values)


def _request(text: str = "hello there") -> GenerationRequest:
    return GenerationRequest(
        messages=[PromptMessage("system", "Be brief."), PromptMessage("user", text)],
        temperature=0.3,
        user_message=text,
    )


async def _collect(generator: OpenAICompatGenerator) -> list[GeneratorEvent]:
    return [event async for event in generator.stream(_request())]


async def _drain(generator: OpenAICompatGenerator, texts: list[str]) -> None:
    async for event in generator.stream(_request()):
        if isinstance(event, TextDelta):
            texts.append(event.text)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_streams_deltas_that_join_to_the_answer(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    events = await _collect(OpenAICompatGenerator(_app(fake.base_url), client))

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["You ", "said: ", "hello ", "there"]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "stop"
    assert finished.usage is not None
    assert finished.usage["completion_tokens"] == 4
    assert fake.streams_completed == 1
    assert fake.disconnects == 0


async def test_request_carries_model_messages_temperature_stream_and_headers(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    app = _app(fake.base_url, headers={"X-Tenant": "acme"})
    await _collect(OpenAICompatGenerator(app, client))

    [received] = fake.requests
    assert received.path == "/v1/chat/completions"
    assert received.body["model"] == "fake-model-1"
    assert received.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert received.body["temperature"] == 0.3
    assert received.body["stream"] is True
    assert received.body["stream_options"] == {"include_usage": True}
    assert received.headers["authorization"] == f"Bearer {API_KEY}"
    assert received.headers["x-tenant"] == "acme"


async def test_no_authorization_without_a_key_and_base_url_query_is_kept(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    app = _app(f"{fake.base_url}/?api-version=2024-06-01", api_key=None)
    await _collect(OpenAICompatGenerator(app, client))

    [received] = fake.requests
    assert "authorization" not in received.headers
    assert received.path == "/v1/chat/completions"
    assert received.query == "api-version=2024-06-01"


async def test_a_stream_without_done_still_finishes(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(tokens=["a", "b"], send_done=False, finish_reason="length")
    events = await _collect(OpenAICompatGenerator(_app(fake.base_url), client))
    assert events[:2] == [TextDelta("a"), TextDelta("b")]
    assert isinstance(events[-1], Finished)
    assert events[-1].finish_reason == "length"


async def test_a_server_that_ignores_stream_true_still_answers(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(ignore_stream=True, finish_reason="length")
    events = await _collect(OpenAICompatGenerator(_app(fake.base_url), client))
    assert events[0] == TextDelta("You said: hello there")
    assert isinstance(events[-1], Finished)
    assert events[-1].finish_reason == "length"
    assert len(events) == 2


async def test_a_refused_connection_is_an_upstream_error(client: aiohttp.ClientSession) -> None:
    app = _app(f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(UpstreamError, match="Could not connect") as info:
        await _collect(OpenAICompatGenerator(app, client))
    assert API_KEY not in str(info.value)


@pytest.mark.parametrize("status", [500, 401, 429])
async def test_an_http_error_status_is_an_upstream_error_with_its_message(
    fake: FakeOpenAI, client: aiohttp.ClientSession, status: int
) -> None:
    # Some upstreams echo the key they refused: it must not travel on.
    fake.configure(fail_status=status, fail_message=f"Incorrect API key provided: {API_KEY}.")
    with pytest.raises(UpstreamError) as info:
        await _collect(OpenAICompatGenerator(_app(fake.base_url), client))

    message = str(info.value)
    assert f"HTTP {status}" in message
    assert "Incorrect API key provided" in message
    assert API_KEY not in message
    assert "DO-NOT-LEAK" not in message


async def test_a_long_upstream_error_message_is_truncated(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(fail_status=500, fail_message="x" * 10_000)
    with pytest.raises(UpstreamError) as info:
        await _collect(OpenAICompatGenerator(_app(fake.base_url), client))
    assert len(str(info.value)) < ERROR_MESSAGE_MAX_CHARS + 200


async def test_a_stream_broken_mid_way_is_an_upstream_error(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(break_after=2)
    texts: list[str] = []
    with pytest.raises(UpstreamError, match="broke") as info:
        await _drain(OpenAICompatGenerator(_app(fake.base_url), client), texts)
    assert texts == ["You ", "said: "]
    assert API_KEY not in str(info.value)


async def test_an_error_event_mid_stream_is_an_upstream_error(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(error_after=1, error_message="The model is overloaded, try later.")
    texts: list[str] = []
    with pytest.raises(UpstreamError, match="The model is overloaded, try later"):
        await _drain(OpenAICompatGenerator(_app(fake.base_url), client), texts)
    assert texts == ["You "]


async def test_a_slow_first_token_is_an_upstream_timeout(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(ttft=30)
    app = _app(fake.base_url, timeout_seconds=0.3)
    with pytest.raises(UpstreamTimeout, match="did not start answering"):
        await _collect(OpenAICompatGenerator(app, client))


async def test_a_hang_mid_stream_is_an_upstream_timeout_and_closes_the_request(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(hang_after=2)
    texts: list[str] = []
    with pytest.raises(UpstreamTimeout, match="stopped streaming"):
        await _drain(OpenAICompatGenerator(_app(fake.base_url, timeout_seconds=0.3), client), texts)
    assert texts == ["You ", "said: "]
    assert await fake.wait_for_disconnects(1)


async def test_closing_the_stream_early_closes_the_upstream_request(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(tokens=[f"w{i} " for i in range(200)], gap=0.05)
    stream = OpenAICompatGenerator(_app(fake.base_url), client).stream(_request())
    assert await anext(stream) == TextDelta("w0 ")
    await stream.aclose()

    assert await fake.wait_for_disconnects(1)
    assert fake.streams_completed == 0


async def test_cancelling_the_consumer_closes_the_upstream_request(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake.configure(hang_after=1)
    first = asyncio.Event()

    async def consume() -> None:
        async for event in OpenAICompatGenerator(_app(fake.base_url), client).stream(_request()):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake.wait_for_disconnects(1)


async def test_the_shared_client_serves_consecutive_generations(
    fake: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    generator = OpenAICompatGenerator(_app(fake.base_url), client)
    for _ in range(3):
        events = await _collect(generator)
        assert (
            "".join(e.text for e in events if isinstance(e, TextDelta)) == "You said: hello there"
        )
    assert fake.streams_completed == 3
    assert fake.disconnects == 0


def test_the_fake_server_also_runs_as_a_sync_context_manager() -> None:
    with running_openai_server(tokens=["ok"]) as server, httpx.Client(trust_env=False) as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        answer = http.post(f"{server.base_url}/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == "ok"


async def test_registry_builds_each_app_and_describes_them_without_secrets(
    client: aiohttp.ClientSession,
) -> None:
    settings = Settings(
        env=Environment.TEST,
        generator_apps={
            "offline": GeneratorApp(kind="offline", description="Built in"),
            "gpt": _app("http://user:url-password@example.test/v1", description="Remote"),
        },
        default_generator="gpt",
    )
    generators = build_generators(settings, client)
    assert isinstance(generators["offline"], OfflineGenerator)
    assert isinstance(generators["gpt"], OpenAICompatGenerator)

    described = describe_apps(settings)
    assert described == [
        {
            "name": "gpt",
            "kind": "openai",
            "model": "fake-model-1",
            "description": "Remote",
            "default": True,
        },
        {
            "name": "offline",
            "kind": "offline",
            "model": None,
            "description": "Built in",
            "default": False,
        },
    ]
    assert API_KEY not in repr(described)
    assert "url-password" not in repr(described)


def test_settings_refuse_an_openai_app_without_a_base_url_or_model() -> None:
    with pytest.raises(ValueError, match="base_url and model"):
        GeneratorApp(kind="openai", model="m")
    with pytest.raises(ValueError, match="base_url and model"):
        Settings(
            env=Environment.TEST,
            generator_apps={"gpt": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            default_generator="gpt",
        )
