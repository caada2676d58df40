"""Chats (a thread of the threads face is a chat) and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, StrEnumType, TimestampMixin, utcnow
from chatsvc.moderation.policy import Action, Severity


class ExecutionStatus(StrEnum):
    """Whether a chat can take a message: AVAILABLE, PROCESSING (a generation runs) or FAILED (the


    last generation failed; see `error`)."""

    AVAILABLE = "AVAILABLE"
    PROCESSING = "PROCESSING"
    FAILED = "FAILED"


class Role(StrEnum):
    """Who wrote a message: user, assistant, tool or system."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    """How a message ended: complete, cancelled (a partial answer) or failed."""

    COMPLETE = "complete"
    CANCELLED = "cancelled"  # stopped by a cancel: the partial answer is kept
    FAILED = "failed"


def new_uuid() -> str:
    return str(uuid.uuid4())


class Chat(TimestampMixin, Base):
    __tablename__ = "chats"
    __table_args__ = (
        Index("ix_chats_workspace_id_assistant_id_id", "workspace_id", "assistant_id", "id"),
        UniqueConstraint("workspace_id", "idempotency_key"),
        # The sweeper looks for PROCESSING chats whose lease expired: only those are indexed.
        Index(
            "ix_chats_processing_lease",
            "lease_expires_at",
            postgresql_where=text("execution_status = 'PROCESSING'"),
            sqlite_where=text("execution_status = 'PROCESSING'"),
        ),
        # Thread lists walk a workspace's chats newest activity first.
        Index("ix_chats_workspace_id_updated_at", "workspace_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # No cascade: a deleted assistant is only marked deleted, its chats stay readable.
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id"))
    principal_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), index=True, default=None
    )
    title: Mapped[str] = mapped_column(String(255), default="")
    like: Mapped[bool | None] = mapped_column(default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    matrix_mode: Mapped[bool] = mapped_column(default=False)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    max_responses: Mapped[int] = mapped_column(Integer)
    max_msg_length: Mapped[int] = mapped_column(Integer)
    execution_status: Mapped[ExecutionStatus] = mapped_column(
        StrEnumType(ExecutionStatus, 16), default=ExecutionStatus.AVAILABLE
    )
    #: why the last generation failed (kept until the next one starts)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: the msg_num the next message gets minus one; bumped under the row lock, so gap-free
    last_msg_num: Mapped[int] = mapped_column(Integer, default=0)
    #: assistant answers given (the end_message is given once when it reaches max_responses)
    responses_count: Mapped[int] = mapped_column(Integer, default=0)
    ended: Mapped[bool] = mapped_column(default=False)
    #: the running (or last) generation and the lease that keeps PROCESSING from sticking
    generation_id: Mapped[str | None] = mapped_column(String(36), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: the process running the generation (its heartbeat tells whether it still lives: a dead
    #: owner's generations are failed within seconds, docs/architecture.md "Recovery"); None
    #: while a background turn waits for a worker (the lease alone covers it then)
    owner_id: Mapped[str | None] = mapped_column(String(64), default=None)
    is_archived: Mapped[bool] = mapped_column(default=False)
    #: the Idempotency-Key of the request that created the chat, so a retry finds it
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # Moderation aggregates of the chat's user messages, kept with each flagged message (so a
    # list filters and orders on columns). They only grow: a superseded message still counts.
    is_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: the highest severity seen, as a rank (0 none, 1 low, 2 medium, 3 high, 4 critical)
    max_severity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: "pii:<category>" and "injection:<category>" seen, sorted
    flags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")


class Message(TimestampMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("chat_id", "msg_num"),
        UniqueConstraint("chat_id", "idempotency_key"),
        # messages-v1: an externalId names one message of its chat (a unique index, not a
        # constraint, so SQLite adds it without rebuilding the table); a sub-thread reads in order.
        Index("ix_messages_chat_id_external_id", "chat_id", "external_id", unique=True),
        Index("ix_messages_chat_id_thread_key_msg_num", "chat_id", "thread_key", "msg_num"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    msg_num: Mapped[int] = mapped_column(Integer)
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 16))
    content: Mapped[str] = mapped_column(Text, default="")
    #: the msg_num of the user message an answer replies to
    usr_msg_num: Mapped[int | None] = mapped_column(Integer, default=None)
    #: name of the fixed response that answered, verbatim, without the model
    fixed: Mapped[str | None] = mapped_column(String(255), default=None)
    references: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    tool_call_id: Mapped[str | None] = mapped_column(String(255), default=None)
    function_name: Mapped[str | None] = mapped_column(String(255), default=None)
    parameters: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    like: Mapped[bool | None] = mapped_column(default=None)
    visible: Mapped[bool] = mapped_column(default=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    #: what the generator was actually sent, for operators
    prompt: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    status: Mapped[MessageStatus] = mapped_column(
        StrEnumType(MessageStatus, 16), default=MessageStatus.COMPLETE
    )
    generation_id: Mapped[str | None] = mapped_column(String(36), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), default=None
    )
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    # The moderation verdict of a user message (other roles keep the defaults).
    is_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    severity: Mapped[Severity] = mapped_column(
        StrEnumType(Severity, 16), default=Severity.NONE, server_default="none"
    )
    injection_categories: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    pii_categories: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    action_taken: Mapped[Action] = mapped_column(
        StrEnumType(Action, 16), default=Action.NONE, server_default="none"
    )
    #: {"rules_version", "findings": [{kind, category, start, end, severity, rule_id}],
    #: "block_message"}: spans into `content` and categories, never the matched text
    moderation: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    #: what the generator is sent instead of `content` when the policy redacted it
    redacted_content: Mapped[str | None] = mapped_column(Text, default=None)
    #: messages-v1 `externalId`: the message's id in an integrated system, unique per chat
    external_id: Mapped[str | None] = mapped_column(String(250), default=None)
    #: token usage of an assistant answer, summed over its tool-call rounds: the upstream's
    #: figures, or an estimate (~4 characters a token) when `usage_estimated`; None on other
    #: roles and on answers given without the model (fixed responses, end messages)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    usage_estimated: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: messages-v1 `chatThreadId`: the sub-thread of the chat the message belongs to (a UUID)
    thread_key: Mapped[str | None] = mapped_column(String(36), default=None)


class ChatSettings(TimestampMixin, Base):
    """A workspace's chat settings: the assistant of threads started without one, and the
    moderation policy (None: the default policy)."""

    __tablename__ = "chat_settings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True
    )
    default_assistant_id: Mapped[int | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="SET NULL"), default=None
    )
    moderation_policy: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class ChatTicket(Base):
    """An external ticket reference kept on a chat (messages-v1 `ticketIds`). The primary key
    answers "does this chat carry one of these tickets" from the index alone; the ticket index
    finds the chats of a ticket."""

    __tablename__ = "chat_tickets"

    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
