"""Validated knowledge items: common questions, fixed responses and lessons."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from chatsvc.kit.validation import InputModel

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
MetadataValue = Annotated[str, StringConstraints(max_length=1000)]
Metadata = Annotated[
    dict[MetadataKey, Annotated[list[MetadataValue], Field(max_length=100)]],
    Field(max_length=50),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
#: content length is capped by settings (knowledge_max_chars); this bound only stops abuse early
Content = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]


class KnowledgeIn(InputModel):
    name: Name
    content: Content
    additional_metadata: Metadata = Field(default_factory=dict)


class CommonQuestionIn(KnowledgeIn):
    """A question users often ask (name) and its answer (content)."""


class FixedResponseIn(KnowledgeIn):
    """An answer given verbatim, without the model, when a user message matches it."""

    topic: Annotated[str, StringConstraints(max_length=255)] = ""


class LessonIn(KnowledgeIn):
    """Guidance added to the prompt when its context of application applies."""

    context_of_application: Annotated[str, StringConstraints(max_length=20_000)] = ""
