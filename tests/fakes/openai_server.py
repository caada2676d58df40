"""A real OpenAI-compatible chat-completions server on loopback, for tests and benchmarks: it
streams like the real thing, fails on demand (HTTP status, broken connection, error event, hang)
and records what it received and which streams the client abandoned.

In a test::

    async with running_openai_server(ttft=0.1) as fake:  # or `with` in sync code
        app = GeneratorApp(kind="openai", base_url=fake.base_url, model="m")
        fake.configure(break_after=3)                       # change behaviour between calls
        assert await fake.wait_for_disconnects(1)

Standalone (for benchmarks)::

    python -m tests.fakes.openai_server --port 9100 --ttft 0.2 --gap 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.fakes._threaded import RunsInThread, ThreadedServer

_WORD = re.compile(r"\s*\S+\s*|\s+")


def words(text: str) -> list[str]:
    """Split a text into tokens that keep their whitespace, so they join back to the text."""
    return _WORD.findall(text)


@dataclass
class Behaviour:
    """What the server does with the next requests. Token indexes count content tokens."""

    #: content tokens to stream; None echoes "You said: <last user message>" word by word
    tokens: list[str] | None = None
    #: seconds between the response headers and the first token
    ttft: float = 0.0
    #: seconds between two tokens
    gap: float = 0.0
    #: answer this HTTP status (with an OpenAI-style error body) instead of streaming
    fail_status: int | None = None
    fail_message: str = "The fake upstream failed on purpose."
    #: close the connection abruptly after this many tokens
    break_after: int | None = None
    #: send an {"error": ...} event after this many tokens, then end the stream
    error_after: int | None = None
    error_message: str = "The fake model is overloaded."
    #: stop sending after this many tokens until the client disconnects (or the server stops)
    hang_after: int | None = None
    finish_reason: str = "stop"
    #: end with "data: [DONE]" (some servers just end the stream)
    send_done: bool = True
    #: answer one whole chat.completion JSON even when asked to stream
    ignore_stream: bool = False
    #: when the request offers tools: call these ([{"name", "arguments"}]; a name matches the
    #: offered function of that name, or the first one that starts with "<name>_")
    tool_calls: list[dict[str, Any]] | None = None
    #: how many requests of one turn answer with tool calls (the next answers in words)
    tool_call_rounds: int = 1
    #: report token usage (the final usage chunk when asked for, `usage` of a whole
    #: completion): prompt_tokens = the words of the messages' contents, completion_tokens =
    #: the content tokens sent (a tool-call answer: 1 per call); False: like upstreams that
    #: send none
    send_usage: bool = True


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    #: lower-case header names
    headers: dict[str, str]
    body: Any


@dataclass
class _Counters:
    requests: list[RecordedRequest] = field(default_factory=list)
    streams_started: int = 0
    streams_completed: int = 0
    disconnects: int = 0


class _BreakConnection(Exception):
    """Raised after the response started: uvicorn then closes the socket mid-body."""


class _QuietBreaks(logging.Filter):
    """uvicorn logs every exception an app raises; a break made on purpose is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is _BreakConnection)


_QUIET = _QuietBreaks()


class FakeOpenAI(RunsInThread):
    """The server, its behaviour (mutable at any time) and what it recorded."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self._host = host
        self._port = port
        self._log_level = log_level
        self._counters = _Counters()
        self._stopping = False
        self._server: ThreadedServer | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- what tests read ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._counters.requests

    @property
    def streams_started(self) -> int:
        return self._counters.streams_started

    @property
    def streams_completed(self) -> int:
        """Streams that were sent to their end (a break or an error event is not an end)."""
        return self._counters.streams_completed

    @property
    def disconnects(self) -> int:
        """Streams the client closed before the server had sent everything."""
        return self._counters.disconnects

    def configure(self, **changes: Any) -> None:
        """Change some behaviour knobs; the next request sees them."""
        self.behaviour = dataclasses.replace(self.behaviour, **changes)

    def reset(self, **behaviour: Any) -> None:
        """Back to the default behaviour (plus `behaviour`) with nothing recorded."""
        self.behaviour = Behaviour(**behaviour)
        self._counters = _Counters()

    async def wait_for_disconnects(self, count: int = 1, within: float = 5.0) -> bool:
        """True once at least `count` early disconnects were seen, False after `within` s."""
        deadline = time.monotonic() + within
        while self.disconnects < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake OpenAI server is already running")
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
        server = ThreadedServer(
            self.app,
            host=self._host,
            port=self._port,
            name="fake OpenAI server",
            log_level=self._log_level,
        )
        self._port = server.port
        self._server, self._stopping = server, False
        server.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True  # ends hangs and waits, so shutdown does not wait on them
        self._server.stop()
        self._server = None

    # -- the protocol --------------------------------------------------------------------------

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _chat_completions(self, request: Request) -> _Stream | _ToolCallStream | JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        self._counters.requests.append(
            RecordedRequest(
                request.method, request.url.path, request.url.query, dict(request.headers), body
            )
        )
        behaviour = self.behaviour  # one snapshot per request: configure() replaces, not mutates
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages is required", "invalid_request_error")
        if behaviour.fail_status is not None:
            return _error(behaviour.fail_status, behaviour.fail_message, "fake_failure")
        model = str(body.get("model") or "fake-model")
        tokens = behaviour.tokens if behaviour.tokens is not None else _echo(body["messages"])
        calls = _tool_calls(behaviour, body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and behaviour.send_usage
        if calls:
            usage = _usage(_prompt_tokens(body), len(calls)) if include_usage else None
            return _ToolCallStream(self, model, calls, usage)
        if not body.get("stream") or behaviour.ignore_stream:
            completion = _completion(model, tokens, behaviour.finish_reason, _prompt_tokens(body))
            if not behaviour.send_usage:
                del completion["usage"]
            return JSONResponse(completion)
        return _Stream(self, behaviour, model, tokens, include_usage, _prompt_tokens(body))

    def _is_stopping(self) -> bool:
        return self._stopping


class _Stream:
    """A streamed chat completion as a raw ASGI response: it watches for the client's
    disconnect while producing, which is how a hang ends and how disconnects are counted."""

    def __init__(
        self,
        server: FakeOpenAI,
        behaviour: Behaviour,
        model: str,
        tokens: list[str],
        include_usage: bool,
        prompt_tokens: int,
    ) -> None:
        self._server = server
        self._b = behaviour
        self._model = model
        self._tokens = tokens
        self._include_usage = include_usage
        self._prompt_tokens = prompt_tokens
        self._id = f"chatcmpl-fake-{uuid.uuid4().hex[:12]}"
        self._created = int(time.time())
        self._finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counters = self._server._counters
        counters.streams_started += 1
        disconnected = asyncio.Event()

        async def watch() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        producer = asyncio.ensure_future(self._produce(send))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if producer.done():
                producer.result()  # re-raises _BreakConnection so uvicorn drops the socket
            elif disconnected.is_set():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
        finally:
            watcher.cancel()
            producer.cancel()
            if disconnected.is_set() and not self._finished:
                counters.disconnects += 1

    async def _produce(self, send: Send) -> None:
        b = self._b
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        await self._pause(b.ttft)
        await self._event(send, {"role": "assistant", "content": ""}, None)
        for index in range(len(self._tokens) + 1):
            if index == b.break_after:
                raise _BreakConnection
            if index == b.error_after:
                error = {"message": b.error_message, "type": "server_error", "code": None}
                await self._data(send, json.dumps({"error": error}))
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if index == b.hang_after:
                await self._pause(float("inf"))
                raise _BreakConnection  # only reached when the server stops
            if index == len(self._tokens):
                break
            if index:
                await self._pause(b.gap)
            await self._event(send, {"content": self._tokens[index]}, None)
        await self._event(send, {}, b.finish_reason)
        if self._include_usage:
            completion = len(self._tokens)
            usage = {
                "prompt_tokens": self._prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": self._prompt_tokens + completion,
            }
            await self._data(send, json.dumps(self._chunk([], usage)))
        if b.send_done:
            await self._data(send, "[DONE]")
        self._finished = True  # whatever the client does now, it got everything
        self._server._counters.streams_completed += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pause(self, seconds: float) -> None:
        # In small steps so that stopping the server ends every wait, even a hang.
        deadline = time.monotonic() + seconds
        while not self._server._is_stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
            "usage": usage,
        }

    async def _event(self, send: Send, delta: dict[str, str], finish_reason: str | None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        await self._data(send, json.dumps(self._chunk([choice], None)))

    async def _data(self, send: Send, data: str) -> None:
        frame = f"data: {data}\n\n".encode()
        await send({"type": "http.response.body", "body": frame, "more_body": True})


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": status}},
        status_code=status,
    )


def _tool_calls(behaviour: Behaviour, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls to answer with, or none: tools offered, tool_choice not "none", and fewer
    tool-call rounds since the last user message than configured."""
    offered = [
        t["function"]["name"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not behaviour.tool_calls or not offered or body.get("tool_choice") == "none":
        return []
    rounds = 0
    for message in reversed(body["messages"]):
        if not isinstance(message, dict) or message.get("role") == "user":
            break
        if message.get("role") == "assistant" and message.get("tool_calls"):
            rounds += 1
    if rounds >= behaviour.tool_call_rounds:
        return []
    calls = []
    for number, wanted in enumerate(behaviour.tool_calls):
        name = str(wanted["name"])
        match = next((o for o in offered if o == name), None) or next(
            (o for o in offered if o.startswith(f"{name}_")), name
        )
        arguments = wanted.get("arguments", {})
        calls.append(
            {
                "id": f"call_{rounds}_{number}_{uuid.uuid4().hex[:8]}",
                "name": match,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            }
        )
    return calls


class _ToolCallStream:
    """Streams tool calls the way OpenAI does: the id and name first, the arguments in pieces."""

    def __init__(
        self,
        server: FakeOpenAI,
        model: str,
        calls: list[dict[str, Any]],
        usage: dict[str, int] | None = None,
    ) -> None:
        self._server = server
        self._model = model
        self._calls = calls
        self._usage = usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._server._counters.streams_started += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )

        async def data(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk = {
                "id": "chatcmpl-fake-tools",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self._model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            frame = f"data: {json.dumps(chunk)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        await data({"role": "assistant", "content": None})
        for index, call in enumerate(self._calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            await data({"tool_calls": [{**head, "function": {"name": call["name"]}}]})
            half = len(call["arguments"]) // 2
            for piece in (call["arguments"][:half], call["arguments"][half:]):
                await data({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        await data({}, "tool_calls")
        if self._usage is not None:
            chunk = {"id": "chatcmpl-fake-tools", "choices": [], "usage": self._usage}
            frame = f"data: {json.dumps(chunk)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        frame = b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": frame, "more_body": False})
        self._server._counters.streams_completed += 1


def _echo(messages: list[Any]) -> list[str]:
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, str(message.get("content", "")))
    if results:
        return words("Tools said: " + " | ".join(results))
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return words(f"You said: {content if isinstance(content, str) else ''}")
    return words("You said nothing.")


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(
        len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict)
    )


def _completion(
    model: str, tokens: list[str], finish_reason: str, prompt_tokens: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(tokens)},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        },
    }


def running_openai_server(**behaviour: Any) -> FakeOpenAI:
    """A server to use as `with` or `async with`; keyword arguments are Behaviour fields."""
    return FakeOpenAI(Behaviour(**behaviour))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first token")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=None, help="answer N words (else echo)")
    args = parser.parse_args(argv)
    tokens = words(" ".join(f"word{i}" for i in range(args.tokens))) if args.tokens else None
    fake = FakeOpenAI(
        Behaviour(tokens=tokens, ttft=args.ttft, gap=args.gap),
        host=args.host,
        port=args.port,
        log_level="info",
    )
    config = uvicorn.Config(fake.app, host=args.host, port=args.port, access_log=False)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
