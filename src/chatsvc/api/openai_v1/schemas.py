"""The OpenAI wire shapes the `/v1/` face reads and writes (the subset chatsvc serves: models and
chat completions), and its error body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatsvc.kit.validation import InputModel


class OpenAIContentPart(InputModel):
    """One part of a message's content; only `text` parts carry text chatsvc reads."""

    type: str = Field(max_length=64, description="`text` (other parts are ignored).")
    text: str | None = None


class OpenAIMessageIn(InputModel):
    """A message of the conversation the client sends."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[OpenAIContentPart] | None = Field(
        default=None, description="The text, or a list of parts whose `text` parts are joined."
    )
    name: str | None = Field(default=None, max_length=255)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class OpenAIStreamOptions(InputModel):
    """Options of a streamed completion."""

    include_usage: bool = Field(
        default=False, description="Send a last chunk with the token usage (empty `choices`)."
    )


class ChatCompletionIn(InputModel):
    """A chat completion request. Sampling parameters (temperature, max_tokens, tools, ...) are
    accepted and ignored: the assistant's own configuration decides them."""

    model: str = Field(
        min_length=1, max_length=255, description="The assistant, as `assistant-<id>`."
    )
    messages: list[OpenAIMessageIn] = Field(
        min_length=1,
        max_length=10_000,
        description="The conversation; its last message must be the user's new message.",
    )
    stream: bool = Field(default=False, description="Stream the answer as chunks (SSE).")
    stream_options: OpenAIStreamOptions | None = None
    metadata: dict[str, str] | None = Field(
        default=None,
        max_length=16,
        description="`chat_id` continues that chatsvc chat (as the X-Chat-Id header does).",
    )
    user: str | None = Field(default=None, max_length=255)


class OpenAIModelOut(BaseModel):
    """An assistant of the workspace, as an OpenAI model."""

    id: str = Field(description="`assistant-<id>`: what `model` names in a completion.")
    object: Literal["model"] = "model"
    created: int = Field(description="When the assistant was created (Unix seconds).")
    owned_by: str = Field(description="The workspace's slug.")


class OpenAIModelListOut(BaseModel):
    """The workspace's assistants as models."""

    object: Literal["list"] = "list"
    data: list[OpenAIModelOut]


class OpenAIAnswerOut(BaseModel):
    """The assistant's answer."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class OpenAIChoiceOut(BaseModel):
    """The one answer of a completion."""

    index: int = 0
    message: OpenAIAnswerOut
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None
    logprobs: None = None


class OpenAIUsageOut(BaseModel):
    """Tokens of the turn: the upstream's figures when the stored message has them, else an
    estimate (about four characters a token; see docs/openai-compatible.md)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    """A chat completion (stream false)."""

    id: str = Field(description="`chatcmpl-<message uuid>`.")
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[OpenAIChoiceOut]
    usage: OpenAIUsageOut
    system_fingerprint: str | None = None


class OpenAIErrorDetail(BaseModel):
    """What went wrong, as OpenAI reports it."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    message: str
    type: str = Field(
        description="invalid_request_error, authentication_error, permission_error, "
        "not_found_error, rate_limit_error or api_error."
    )
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(description="chatsvc's stable code, e.g. model_not_found.")


class OpenAIErrorBody(BaseModel):
    """The error body of the `/v1/` face (OpenAI's shape)."""

    error: OpenAIErrorDetail


def error_body(
    status: int, message: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return OpenAIErrorBody(
        error=OpenAIErrorDetail(message=message, type=error_type(status), param=param, code=code)
    ).model_dump()


def error_type(status: int) -> str:
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "rate_limit_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")
