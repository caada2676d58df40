"""What a generator is given and what it yields: the contract between the pipeline and every
generator (offline, OpenAI-compatible, later tool-calling ones)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


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


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = None


GeneratorEvent = TextDelta | Finished


class Generator(Protocol):
    """A generator app. `stream` yields text deltas then one Finished. It raises
    chatsvc.kit.errors.UpstreamError (unreachable, HTTP error, broken stream) or UpstreamTimeout
    (no first byte / no next chunk in time). Closing the iterator (aclose) must close any
    upstream request at once: that is how a cancel stops a generation."""

    def stream(self, request: GenerationRequest) -> AsyncGenerator[GeneratorEvent, None]: ...
