"""The built-in offline generator: answers from the assistant's own knowledge, with no model and
no network, streamed word by word like a model would. It calls tools too, deterministically, so
the tool-calling loop works (and can be tried) without a model:

- a tool is called when the user message names it (its name or its function name, any case),
  or, when the request requires a tool call (pretools), every offered tool is called;
- the arguments are the JSON object written right after the name, if there is one
  (`use calculator {"a": 2, "b": 3}`); otherwise each required parameter gets a value taken from
  the message (strings: the message; numbers: its first number; booleans: true; enums: the
  first value; arrays and objects: empty);
- each tool is called once per turn; once every named tool has answered, the answer reports
  what the tools returned (and the best knowledge hit, if any)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from chatsvc.config import GeneratorApp
from chatsvc.generation.types import (
    Finished,
    GenerationRequest,
    GeneratorEvent,
    PromptMessage,
    TextDelta,
    ToolCall,
    ToolCalls,
    ToolSpec,
)

NO_KNOWLEDGE_ANSWER = (
    "I am the offline generator and I have no knowledge that matches your question. "
    "An assistant gets answers here when you add common questions, fixed responses or lessons "
    "to it."
)

# A word with the whitespace around it, so that the pieces join back to the exact text; a text
# made only of whitespace is one piece.
_WORD = re.compile(r"\s*\S+\s*|\s+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class OfflineGenerator:
    """Answers with the best knowledge hit, else the assistant's not-info message, else a fixed
    sentence explaining how to give the assistant knowledge; calls the tools a message names."""

    def __init__(self, app: GeneratorApp) -> None:
        self._delay = app.token_delay_seconds

    @staticmethod
    def answer_for(request: GenerationRequest) -> str:
        results = _results_of_turn(request.messages)
        # Hits arrive ranked by the pipeline, best first; an empty one answers nothing.
        best = next((hit.content for hit in request.hits if hit.content.strip()), None)
        if results:
            lines = [f"{name}: {content}" for name, content in results]
            told = "The tools returned:\n" + "\n".join(lines)
            return f"{best}\n\n{told}" if best else told
        if best is not None:
            return best
        if request.not_info_message:
            return request.not_info_message
        return NO_KNOWLEDGE_ANSWER

    @staticmethod
    def calls_for(request: GenerationRequest) -> tuple[ToolCall, ...]:
        if not request.tools or request.tool_choice == "none":
            return ()
        called = {call.name for call in _calls_of_turn(request.messages)}
        text = request.user_message
        lowered = text.lower()
        calls = []
        for spec in request.tools:
            if spec.name in called:
                continue
            at = _mention(lowered, spec)
            if at is None and request.tool_choice != "required":
                continue
            arguments = _arguments(text, at, spec)
            calls.append(ToolCall(f"call_{uuid.uuid4().hex[:24]}", spec.name, arguments))
        return tuple(calls)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GeneratorEvent, None]:
        calls = self.calls_for(request)
        if calls:
            yield ToolCalls(calls)
            yield Finished("tool_calls")
            return
        # No usage: there is no model to count tokens, the loop estimates them (marked so).
        # finditer is lazy: each word costs O(its length), the answer is never rebuilt.
        for number, match in enumerate(_WORD.finditer(self.answer_for(request))):
            if number and self._delay > 0:
                await asyncio.sleep(self._delay)
            yield TextDelta(match.group())
        yield Finished("stop")


def _turn(messages: list[PromptMessage]) -> list[PromptMessage]:
    """The messages after the last user message: this turn's tool calls and results."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index + 1 :]
    return []


def _calls_of_turn(messages: list[PromptMessage]) -> list[ToolCall]:
    return [call for message in _turn(messages) for call in message.tool_calls]


def _results_of_turn(messages: list[PromptMessage]) -> list[tuple[str, str]]:
    turn = _turn(messages)
    names = {call.id: call.name for message in turn for call in message.tool_calls}
    return [
        (names.get(message.tool_call_id or "", "tool"), message.content)
        for message in turn
        if message.role == "tool"
    ]


def _mention(lowered: str, spec: ToolSpec) -> int | None:
    """Where the message names the tool: the end of the mention, or None."""
    for name in (spec.name.lower(), spec.title.lower()):
        if not name:
            continue
        at = lowered.find(name)
        if at >= 0:
            return at + len(name)
    return None


def _arguments(text: str, at: int | None, spec: ToolSpec) -> dict[str, Any]:
    if at is not None:
        rest = text[at:].lstrip(" :(")
        if rest.startswith("{"):
            try:
                value, _end = json.JSONDecoder().raw_decode(rest)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
    properties = spec.parameters.get("properties") or {}
    required = spec.parameters.get("required") or []
    return {name: _value(text, properties.get(name) or {}) for name in required}


def _value(text: str, schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if kind in ("number", "integer"):
        match = _NUMBER.search(text)
        number = float(match.group()) if match else 0.0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return text
