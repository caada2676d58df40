"""An assistant's knowledge: common questions (FAQ), fixed responses and lessons."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, TimestampMixin


class KnowledgeItem(TimestampMixin, Base):
    """Columns every kind of knowledge shares."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text)
    additional_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CommonQuestion(KnowledgeItem):
    __tablename__ = "common_questions"
    __table_args__ = (Index("ix_common_questions_assistant_id_id", "assistant_id", "id"),)


class FixedResponse(KnowledgeItem):
    __tablename__ = "fixed_responses"
    __table_args__ = (Index("ix_fixed_responses_assistant_id_id", "assistant_id", "id"),)

    topic: Mapped[str] = mapped_column(String(255), default="")


class Lesson(KnowledgeItem):
    __tablename__ = "lessons"
    __table_args__ = (Index("ix_lessons_assistant_id_id", "assistant_id", "id"),)

    context_of_application: Mapped[str] = mapped_column(Text, default="")
