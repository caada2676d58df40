"""What a generator is given and what it yields: the contract between the pipeline and every
generator (offline, OpenAI-compatible, later tool-calling ones)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for: `name` is the function name it was offered."""

    id: str
    name: str
    arguments: dict[str, Any]
    #: the arguments as the model wrote them, when they were not a JSON object
    raw_arguments: str | None = None


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    #: assistant messages that asked for tools
    tool_calls: tuple[ToolCall, ...] = ()
    #: tool messages: the call they answer
    tool_call_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The OpenAI chat-completions shape."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["content"] = self.content or None
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.raw_arguments
                        if call.raw_arguments is not None
                        else json.dumps(call.arguments),
                    },
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model as a function."""

    name: str  # the function name (unique in the request)
    title: str  # the tool's own name, as people call it
    description: str
    parameters: dict[str, Any]  # JSON Schema, type object

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description or self.title,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """A knowledge item the pipeline retrieved for the user message."""

    kind: str  # "faq" | "lesson" | "fixed"
    item_id: int
    name: str
    content: str
    score: float


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    #: the whole prompt, in order: system, history, the user message as the model receives it
    messages: list[PromptMessage]
    temperature: float
    #: the user message as typed (without add_to_user_message)
    user_message: str
    #: retrieved knowledge, best first (the offline generator answers from it)
    hits: list[KnowledgeHit] = field(default_factory=list)
    not_info_message: str | None = None
    #: functions the model may call
    tools: list[ToolSpec] = field(default_factory=list)
    #: "auto": the model decides; "required": it must call at least one tool (pretools)
    tool_choice: str = "auto"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str = "stop"
    #: the upstream's token usage (OpenAI's `usage` object), None when it sent none: the loop
    #: then estimates it (chatsvc.generation.usage)
    usage: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The model asks for these calls (before Finished with finish_reason "tool_calls")."""

    calls: tuple[ToolCall, ...]


GeneratorEvent = TextDelta | ToolCalls | Finished


class Generator(Protocol):
    """A generator app. `stream` yields text deltas, at most one ToolCalls (when the request
    offered tools and the model calls some), then one Finished. It raises
    chatsvc.kit.errors.UpstreamError (unreachable, HTTP error, broken stream) or UpstreamTimeout
    (no first byte / no next chunk in time). Closing the iterator (aclose) must close any
    upstream request at once: that is how a cancel stops a generation."""

    def stream(self, request: GenerationRequest) -> AsyncGenerator[GeneratorEvent, None]: ...
