"""Tables of the chat artifacts: the resource library (one table, every kind), published bundle
revisions and their attachments, drafts, and the analytics relations (materialized views on
PostgreSQL, tables refreshed in one transaction on SQLite)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.artifacts.kinds import ResourceKind
from chatsvc.kit.db import Base, IdType, TimestampMixin, UTCDateTime, utcnow


def new_uuid() -> str:
    return str(uuid.uuid4())


KindType = Enum(
    ResourceKind,
    name="resource_kind",
    native_enum=False,
    create_constraint=True,
    length=32,
    values_callable=lambda kinds: [kind.value for kind in kinds],
    validate_strings=True,
)


class Resource(TimestampMixin, Base):
    """A library item of a workspace: a persona, a document, a question, ... (sixteen kinds, one
    table). `data` holds what the kind has beyond a name and a description, validated by the
    kind's model on every write. Items are attached to entries through bundles."""

    __tablename__ = "artifact_resources"
    __table_args__ = (
        Index("ix_artifact_resources_workspace_id_kind_name", "workspace_id", "kind", "name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[ResourceKind] = mapped_column(KindType, doc="One of the sixteen kinds.")
    name: Mapped[str] = mapped_column(String(255), doc="What the item is called (1-255).")
    description: Mapped[str] = mapped_column(Text, default="", doc="Its text.")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="The kind's typed data.")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), default=None, doc="Who made it."
    )


class Bundle(Base):
    """A published revision of a chat entry's customisation bundle: which library items of each
    kind the entry uses, in order. Revisions are numbered 1, 2, ... per entry and never change;
    the newest is the entry's current bundle, and an attempt shows the revision that was
    current when it started."""

    __tablename__ = "artifact_bundles"
    __table_args__ = (UniqueConstraint("assistant_id", "revision"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    assistant_id: Mapped[int] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), doc="The chat entry."
    )
    revision: Mapped[int] = mapped_column(Integer, doc="1 for the first publication, then +1.")
    draft_id: Mapped[str | None] = mapped_column(
        String(36), default=None, doc="The draft it was published from."
    )
    published_by: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), default=None, doc="Who published it."
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, doc="When it was published.")


class Attachment(Base):
    """One library item in a bundle, at a position among the items of its kind."""

    __tablename__ = "artifact_attachments"
    __table_args__ = (UniqueConstraint("bundle_id", "resource_id"),)

    bundle_id: Mapped[int] = mapped_column(
        ForeignKey("artifact_bundles.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[ResourceKind] = mapped_column(KindType, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, doc="From 0, per kind.")
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("artifact_resources.id", ondelete="CASCADE"), index=True
    )


class Draft(TimestampMixin, Base):
    """A caller's unpublished change of a chat entry's bundle: the selected item ids per kind
    and new items to add, in `form_state`. `version` starts at 1 and grows by one with every
    accepted change; a change names the version it was made against (optimistic concurrency).
    One draft per caller and entry; publishing it makes a new bundle revision and removes it."""

    __tablename__ = "artifact_drafts"
    __table_args__ = (
        UniqueConstraint("principal_id", "assistant_id"),
        Index("ix_artifact_drafts_workspace_id_principal_id", "workspace_id", "principal_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    assistant_id: Mapped[int] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), doc="The chat entry it changes."
    )
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), doc="Its owner."
    )
    version: Mapped[int] = mapped_column(Integer, doc="1, then +1 per accepted change.")
    base_revision: Mapped[int] = mapped_column(
        Integer, doc="The bundle revision it started from (0: none was published)."
    )
    form_state: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="The draft's selections and new items."
    )


class AnalyticsRefresh(Base):
    """When each analytics relation was last refreshed."""

    __tablename__ = "artifact_analytics_refreshes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    refreshed_at: Mapped[datetime] = mapped_column()


# --- analytics relations -----------------------------------------------------------------------
# Materialized views on PostgreSQL (created by the migration, refreshed concurrently), tables on
# SQLite (filled by the refresh in one transaction). They are not mapped classes: alembic must
# not manage them, so they live in a MetaData of their own and the migrations' autogenerate
# comparison skips the names below.

ANALYTICS = MetaData()
CHAT_STATS = "artifact_chat_stats"
ASSISTANT_STATS = "artifact_assistant_stats"


def _count(name: str) -> Column[int]:
    """A count of an analytics relation: never null (zero where there is nothing to count)."""
    return Column(name, BigInteger, nullable=False)


chat_stats = Table(
    CHAT_STATS,
    ANALYTICS,
    Column("chat_id", BigInteger, primary_key=True),
    Column("workspace_id", BigInteger, nullable=False),
    Column("assistant_id", BigInteger, nullable=False),
    Column("principal_id", BigInteger),
    _count("message_count"),
    _count("user_message_count"),
    _count("assistant_message_count"),
    Column("first_message_at", UTCDateTime()),
    Column("last_message_at", UTCDateTime()),
    comment="Per chat: visible messages, by role, first and last message time.",
)
assistant_stats = Table(
    ASSISTANT_STATS,
    ANALYTICS,
    Column("assistant_id", BigInteger, primary_key=True),
    Column("workspace_id", BigInteger, nullable=False),
    _count("chat_count"),
    _count("message_count"),
    _count("user_message_count"),
    _count("assistant_message_count"),
    _count("liked_chat_count"),
    _count("disliked_chat_count"),
    Column("last_message_at", UTCDateTime()),
    comment="Per assistant: chats, visible messages by role, chat likes, last message time.",
)
ANALYTICS_VIEWS: tuple[str, ...] = (ASSISTANT_STATS, CHAT_STATS)
Base.metadata.info.setdefault("unmanaged_tables", set()).update(ANALYTICS_VIEWS)
