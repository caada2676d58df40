"""The OpenAI-compatible generator: streams `POST {base_url}/chat/completions` (OpenAI, Azure
OpenAI, vLLM, Ollama, llama.cpp, LiteLLM ...) and maps every upstream failure to UpstreamError
(502) or UpstreamTimeout (504) with a message that never carries a credential.

It runs on aiohttp (its HTTP parser is in C) and reads the event stream line by line itself: on
the pure-Python HTTP stack of httpx the same stream cost twice the CPU per token."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from chatsvc.config import GeneratorApp
from chatsvc.generation.types import (
    Finished,
    GenerationRequest,
    GeneratorEvent,
    TextDelta,
    ToolCall,
    ToolCalls,
)
from chatsvc.kit.errors import UpstreamError, UpstreamTimeout

#: how much of an upstream error body is read, and how much of its message is repeated
ERROR_BODY_MAX_BYTES = 16_384
ERROR_MESSAGE_MAX_CHARS = 300

_SENSITIVE_HEADER_WORDS = ("auth", "key", "token", "secret", "password")
_REDACTED = "***"


@dataclass(slots=True)
class _StreamState:
    started: bool = False  # a first event arrived: a later silence is a stall, not a slow start
    done: bool = False  # "[DONE]" arrived: what follows is only drained
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    #: tool calls being assembled, by index: [id, name, arguments so far]
    calls: dict[int, list[str]] = field(default_factory=dict)

    def tool_calls(self) -> ToolCalls | None:
        if not self.calls:
            return None
        return ToolCalls(
            tuple(
                _tool_call(call_id, name, raw)
                for _i, (call_id, name, raw) in sorted(self.calls.items())
            )
        )


def _tool_call(call_id: str, name: str, raw: str) -> ToolCall:
    """A call with its arguments parsed; arguments that are not a JSON object stay raw, so the
    loop can tell the model what was wrong."""
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return ToolCall(call_id, name, {}, raw_arguments=raw)
    if not isinstance(arguments, dict):
        return ToolCall(call_id, name, {}, raw_arguments=raw)
    return ToolCall(call_id, name, arguments)


@dataclass(frozen=True, slots=True)
class _Event:
    """One server-sent event: its name (`message` when none was given) and its data."""

    event: str
    data: str


async def _events(response: aiohttp.ClientResponse) -> AsyncGenerator[_Event, None]:
    """The events of an SSE body (WHATWG rules: `data:` lines joined by newlines, an empty line
    dispatches, comments and unknown fields ignored)."""
    event, data = "", list[str]()
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield _Event(event or "message", "\n".join(data))
            event, data = "", list[str]()
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value.decode("utf-8", errors="replace"))
        elif name == b"event":
            event = value.decode("utf-8", errors="replace")
    if data:
        yield _Event(event or "message", "\n".join(data))


class OpenAICompatGenerator:
    """One configured OpenAI-compatible app. It shares the process-wide aiohttp session
    (connection pooling, limits) and sets its own timeouts per request."""

    def __init__(
        self, app: GeneratorApp, client: aiohttp.ClientSession, *, name: str = "openai"
    ) -> None:
        if app.base_url is None:
            raise ValueError("an openai generator app needs a base_url")
        if not app.model:
            raise ValueError("an openai generator app needs a model")
        self._client = client
        self._model = app.model
        self._url = _chat_completions_url(URL(str(app.base_url)))
        # Named by host only: a base URL may carry userinfo, a query may carry a key.
        self._where = f"generator {name!r} at {self._url.host}"
        # `connect` bounds waiting for a pooled connection and opening one; `sock_read` a
        # silence: before the first byte (a slow start) or between two (a stall).
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=app.connect_timeout_seconds,
            sock_connect=app.connect_timeout_seconds,
            sock_read=app.timeout_seconds,
        )
        self._read_timeout = app.timeout_seconds
        headers: dict[str, str] = {}
        if app.api_key is not None and app.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {app.api_key.get_secret_value()}"
        headers.update(app.headers)  # explicit headers win (e.g. Azure's api-key)
        self._headers = headers
        self._secrets = _secrets_of(app, self._url, headers)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GeneratorEvent, None]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [message.as_dict() for message in request.messages],
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [tool.as_dict() for tool in request.tools]
            body["tool_choice"] = request.tool_choice
        state = _StreamState()
        try:
            async with self._client.post(
                self._url,
                json=body,
                headers={**self._headers, "Accept": "text/event-stream"},
                timeout=self._timeout,
            ) as response:
                if response.status >= 300:
                    raise UpstreamError(await self._status_message(response))
                content_type = response.headers.get("content-type", "").partition(";")[0]
                if content_type.strip().lower() == "application/json":
                    # A server that ignores stream=true answers with one whole completion.
                    async for event in self._whole_completion(response, state):
                        yield event
                elif "text/event-stream" not in content_type:
                    raise UpstreamError(
                        f"The {self._where} answered with content type "
                        f"{self._clip(content_type)!r} instead of an event stream"
                    )
                else:
                    async for sse in _events(response):
                        if state.done:
                            continue  # drain to the end so the connection can be reused
                        delta = self._read_event(sse, state)
                        if delta:
                            yield TextDelta(delta)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            if not state.done:
                raise UpstreamTimeout(self._timeout_message(exc, state)) from exc
        except aiohttp.ClientError as exc:
            if not state.done:
                raise UpstreamError(self._transport_message(exc, state)) from exc
        # The response is closed before the end is announced, so its connection is back in the
        # pool by the time the pipeline finishes the turn.
        calls = state.tool_calls()
        if calls is not None:
            yield calls
        yield Finished(state.finish_reason or ("tool_calls" if calls else "stop"), state.usage)

    def _read_event(self, sse: _Event, state: _StreamState) -> str | None:
        """The text an event carries, after recording what it says about the end."""
        state.started = True
        data = sse.data.strip()
        if not data:
            return None
        if data == "[DONE]":
            state.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamError(
                f"The {self._where} sent a stream chunk that is not JSON: {self._clip(data)!r}"
            ) from None
        if not isinstance(chunk, dict):
            raise UpstreamError(f"The {self._where} sent a stream chunk that is not an object")
        if sse.event == "error" or chunk.get("error"):
            raise UpstreamError(
                f"The {self._where} reported an error mid-stream: {self._error_text(chunk)}"
            )
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            state.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None  # the usage-only chunk, a keep-alive or a role-only preamble
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            state.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return None
        if isinstance(delta.get("tool_calls"), list):
            _gather_calls(delta["tool_calls"], state)
        content = delta.get("content")
        return content if isinstance(content, str) and content else None

    async def _whole_completion(
        self, response: aiohttp.ClientResponse, state: _StreamState
    ) -> AsyncGenerator[TextDelta, None]:
        try:
            completion = json.loads(await response.read())
        except ValueError:
            raise UpstreamError(f"The {self._where} answered with malformed JSON") from None
        if not isinstance(completion, dict) or completion.get("error"):
            raise UpstreamError(f"The {self._where} answered: {self._error_text(completion)}")
        state.started = True
        choices = completion.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            state.finish_reason = choice["finish_reason"]
        if isinstance(completion.get("usage"), dict):
            state.usage = completion["usage"]
        if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
            for index, call in enumerate(message["tool_calls"]):
                if isinstance(call, dict):
                    _gather_calls([{**call, "index": index}], state)
        if isinstance(content, str) and content:
            yield TextDelta(content)

    async def _status_message(self, response: aiohttp.ClientResponse) -> str:
        # Bounded: an error page must not be read whole into memory.
        raw = bytearray()
        try:
            async for piece in response.content.iter_any():
                raw += piece
                if len(raw) >= ERROR_BODY_MAX_BYTES:
                    break
        except (aiohttp.ClientError, TimeoutError):
            pass  # the status alone is worth reporting
        text = raw[:ERROR_BODY_MAX_BYTES].decode("utf-8", errors="replace").strip()
        try:
            detail = self._error_text(json.loads(text))
        except ValueError:
            detail = self._clip(text)
        reason = f"HTTP {response.status}"
        return f"The {self._where} answered {reason}" + (f": {detail}" if detail else "")

    def _error_text(self, payload: object) -> str:
        """The human part of an OpenAI-style (or FastAPI-style) error body, clipped."""
        if isinstance(payload, dict):
            for key in ("error", "detail", "message"):
                value = payload.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or value.get("msg") or json.dumps(value)
                if value:
                    return self._clip(value if isinstance(value, str) else json.dumps(value))
        return self._clip(json.dumps(payload)) if payload else ""

    def _timeout_message(self, exc: BaseException, state: _StreamState) -> str:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"The {self._where} did not accept a connection in time"
        if state.started:
            return f"The {self._where} stopped streaming for more than {self._read_timeout:g}s"
        return f"The {self._where} did not start answering within {self._read_timeout:g}s"

    def _transport_message(self, exc: aiohttp.ClientError, state: _StreamState) -> str:
        reason = self._clip(str(exc) or type(exc).__name__)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"Could not connect to the {self._where}: {reason}"
        if state.started:
            return f"The stream from the {self._where} broke: {reason}"
        return f"The request to the {self._where} failed: {reason}"

    def _clip(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        text = " ".join(text.split())
        if len(text) > ERROR_MESSAGE_MAX_CHARS:
            text = text[: ERROR_MESSAGE_MAX_CHARS - 1] + "…"
        return text


def _gather_calls(pieces: list[Any], state: _StreamState) -> None:
    """Adds streamed tool-call pieces: the first piece of a call carries its id and name, the
    following ones more of its arguments (O(1) per piece)."""
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        index = piece.get("index")
        index = index if isinstance(index, int) else len(state.calls)
        call = state.calls.setdefault(index, ["", "", ""])
        if isinstance(piece.get("id"), str) and piece["id"]:
            call[0] = piece["id"]
        function = piece.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str) and function["name"]:
                call[1] = function["name"]
            if isinstance(function.get("arguments"), str):
                call[2] += function["arguments"]


def _chat_completions_url(base: URL) -> URL:
    # Appended to the path so a query (Azure's ?api-version=...) stays where it belongs.
    return base.with_path(base.path.rstrip("/") + "/chat/completions", keep_query=True)


def _secrets_of(app: GeneratorApp, url: URL, headers: dict[str, str]) -> list[str]:
    """Every value an upstream might echo back that must never reach an error message."""
    secrets: list[str] = []
    if app.api_key is not None:
        secrets.append(app.api_key.get_secret_value())
    if url.password:
        secrets.append(url.password)
    for name, value in url.query.items():
        if any(word in name.lower() for word in _SENSITIVE_HEADER_WORDS):
            secrets.append(value)
    for name, value in headers.items():
        if any(word in name.lower() for word in _SENSITIVE_HEADER_WORDS):
            secrets.append(value)
            secrets.append(value.removeprefix("Bearer ").strip())
    # Longest first, so a key is not half-replaced by a shorter secret it contains.
    return sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
