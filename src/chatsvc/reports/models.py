"""Structured feedback on a chat."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, TimestampMixin


class Report(TimestampMixin, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_workspace_id_created_at", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(255), default="")
    comments: Mapped[str] = mapped_column(Text, default="")
