"""Wire schemas of the cognitive face (snake_case, integer ids) for assistants and knowledge."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chatsvc.assistants.schemas import AssistantIn, AssistantPatch
from chatsvc.kit.web import PageOut
from chatsvc.knowledge.schemas import CommonQuestionIn, FixedResponseIn, LessonIn

__all__ = [
    "AssistantIn",
    "AssistantInfoOut",
    "AssistantInfoPage",
    "AssistantOut",
    "AssistantPage",
    "AssistantPatch",
    "CommonQuestionIn",
    "CommonQuestionOut",
    "FixedResponseIn",
    "FixedResponseOut",
    "LessonIn",
    "LessonOut",
]


class OutModel(BaseModel):
    """A response body. Every field is always sent, so the OpenAPI document lists fields with a
    default as required too (generated clients then type them as present)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )


class AssistantOut(OutModel):
    """An assistant's configuration."""

    id: int
    generation_config: str
    generation_config_pretools: str | None
    description: str
    system_prompt: str
    temperature: float
    max_responses: int
    max_msg_length: int
    initial_message: str | None
    end_message: str | None
    add_to_user_message: str | None
    max_consecutive_tool_calls: int
    created_at: datetime
    updated_at: datetime
    retrieval_faq: int = Field(description="Number of indexed common questions (read-only).")
    retrieval_fixed_faq: int = Field(description="Number of indexed fixed responses (read-only).")
    retrieval_lessons: int = Field(description="Number of indexed lessons (read-only).")
    matrix_mode_available: bool
    not_info_message: str | None
    strategy_to_optimize_tokens: str
    faq_available: bool
    fixed_available: bool
    lessons_available: bool
    realtime_available: bool
    info: str | None
    colors: dict[str, str] | None
    logo: str | None
    streaming_available: bool
    tools: list[int]
    pretools: list[int]


class AssistantInfoOut(OutModel):
    """What the chat UI needs to show an assistant and configure the chat."""

    id: int
    info: str | None
    description: str
    initial_message: str | None
    max_msg_length: int
    streaming_available: bool
    matrix_mode_available: bool
    realtime_available: bool
    logo: str | None
    colors: dict[str, str] | None


class AssistantPage(PageOut[AssistantOut]):
    """A page of assistants, with count and the next and previous pages' URLs."""


class AssistantInfoPage(PageOut[AssistantInfoOut]):
    """A page of assistants with the fields the chat page needs."""


class CommonQuestionOut(OutModel):
    """A common question of an assistant's knowledge (matched by its name)."""

    id: int
    name: str
    content: str
    additional_metadata: dict[str, list[str]]


class FixedResponseOut(OutModel):
    """A fixed response of an assistant's knowledge, sent verbatim when its topic matches."""

    id: int
    topic: str
    content: str
    name: str
    additional_metadata: dict[str, list[str]]


class LessonOut(OutModel):
    """A lesson of an assistant's knowledge: what to apply, and when."""

    id: int
    name: str
    content: str
    context_of_application: str
    additional_metadata: dict[str, list[str]]
