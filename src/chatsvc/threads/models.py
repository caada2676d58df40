"""Chat sessions: one per user of a workspace, holding that user's threads (a thread is a chat;
it belongs to the session of the user who made it)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.chats.models import new_uuid
from chatsvc.kit.db import Base, IdType, TimestampMixin


class ChatSession(TimestampMixin, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (UniqueConstraint("workspace_id", "principal_id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    #: the user's id on the threads face (principals have integer ids only)
    user_uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
