"""Token usage of a model call: the upstream's figures when it sends them (OpenAI's `usage`,
asked for with `stream_options.include_usage`), else an estimate.

The estimate is ~4 characters a token (OpenAI's rule of thumb for English text), rounded up:
the prompt counts every message's text, the arguments of the tool calls it carries and the
tool definitions offered; the completion counts the text streamed and the arguments of the tool
calls asked for. It is computed once per model call, never per token."""

from __future__ import annotations

import json
from typing import Any

from chatsvc.generation.types import GenerationRequest, ToolCall

#: characters per token of the estimate
CHARS_PER_TOKEN = 4


def tokens_of(chars: int) -> int:
    """The estimated tokens of `chars` characters."""
    return -(-chars // CHARS_PER_TOKEN)


def reported(usage: dict[str, Any] | None) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) when the upstream reported both as integers."""
    if usage is None:
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if (
        isinstance(prompt, int)
        and isinstance(completion, int)
        and not isinstance(prompt, bool)
        and not isinstance(completion, bool)
        and prompt >= 0
        and completion >= 0
    ):
        return prompt, completion
    return None


def prompt_chars(request: GenerationRequest) -> int:
    chars = 0
    for message in request.messages:
        chars += len(message.content)
        for call in message.tool_calls:
            chars += len(call.name) + _arguments_chars(call)
    if request.tools:
        chars += len(json.dumps([tool.as_dict() for tool in request.tools]))
    return chars


def calls_chars(calls: list[ToolCall]) -> int:
    return sum(len(call.name) + _arguments_chars(call) for call in calls)


def _arguments_chars(call: ToolCall) -> int:
    if call.raw_arguments is not None:
        return len(call.raw_arguments)
    return len(json.dumps(call.arguments))
