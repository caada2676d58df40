"""Assistants: behaviour, limits, feature flags, UI settings and ordered tool lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from chatsvc.kit.db import Base, IdType, TimestampMixin
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson


class AssistantTool(Base):
    """Position of a tool in an assistant's `tools` or `pretools` list."""

    __tablename__ = "assistant_tools"

    assistant_id: Mapped[int] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[str] = mapped_column(String(8), primary_key=True)  # "tools" | "pretools"
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)


class Assistant(TimestampMixin, Base):
    __tablename__ = "assistants"
    # Lists walk a workspace's live assistants in id order: one ordered index-only scan.
    __table_args__ = (Index("ix_assistants_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(String(255))
    info: Mapped[str | None] = mapped_column(String(255), default=None)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    generation_config: Mapped[str] = mapped_column(String(100))
    generation_config_pretools: Mapped[str | None] = mapped_column(String(100), default=None)
    temperature: Mapped[float] = mapped_column(default=0.7)
    max_responses: Mapped[int] = mapped_column(Integer)
    max_msg_length: Mapped[int] = mapped_column(Integer)
    max_consecutive_tool_calls: Mapped[int] = mapped_column(Integer)
    initial_message: Mapped[str | None] = mapped_column(Text, default=None)
    end_message: Mapped[str | None] = mapped_column(Text, default=None)
    add_to_user_message: Mapped[str | None] = mapped_column(Text, default=None)
    not_info_message: Mapped[str | None] = mapped_column(Text, default=None)
    strategy_to_optimize_tokens: Mapped[str] = mapped_column(String(32), default="none")
    matrix_mode_available: Mapped[bool] = mapped_column(default=False)
    faq_available: Mapped[bool] = mapped_column(default=True)
    fixed_available: Mapped[bool] = mapped_column(default=True)
    lessons_available: Mapped[bool] = mapped_column(default=True)
    realtime_available: Mapped[bool] = mapped_column(default=True)
    streaming_available: Mapped[bool] = mapped_column(default=True)
    colors: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    logo: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: set when deleted: the assistant leaves the API, its chats stay readable
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    tool_links: Mapped[list[AssistantTool]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by=(AssistantTool.slot, AssistantTool.position),
    )

    retrieval_faq: Mapped[int] = column_property(
        select(func.count(CommonQuestion.id))
        .where(CommonQuestion.assistant_id == id)
        .correlate_except(CommonQuestion)
        .scalar_subquery()
    )
    retrieval_fixed_faq: Mapped[int] = column_property(
        select(func.count(FixedResponse.id))
        .where(FixedResponse.assistant_id == id)
        .correlate_except(FixedResponse)
        .scalar_subquery()
    )
    retrieval_lessons: Mapped[int] = column_property(
        select(func.count(Lesson.id))
        .where(Lesson.assistant_id == id)
        .correlate_except(Lesson)
        .scalar_subquery()
    )

    def tool_ids(self, slot: str) -> list[int]:
        return [link.tool_id for link in self.tool_links if link.slot == slot]

    @property
    def tools(self) -> list[int]:
        return self.tool_ids("tools")

    @property
    def pretools(self) -> list[int]:
        return self.tool_ids("pretools")
