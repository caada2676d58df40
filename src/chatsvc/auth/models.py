"""Tenancy and identity: workspaces, principals (users, agents, external identities,
service principals) and hashed API keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chatsvc.kit.db import Base, IdType, StrEnumType, TimestampMixin


class Role(StrEnum):
    """What a key may do: admin (everything in its workspace) or member."""

    ADMIN = "admin"
    MEMBER = "member"


class PrincipalKind(StrEnum):
    """Who a sender is: a user, an agent, an external system or the workspace's service


    principal."""

    USER = "user"
    AGENT = "agent"
    EXTERNAL = "external"
    SERVICE = "service"


class Workspace(TimestampMixin, Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    #: signs the workspace's outbound callbacks ("whsec_" + base64 of 32 random bytes); made at
    #: creation, or on first use for workspaces created before it existed
    webhook_secret: Mapped[str | None] = mapped_column(String(64), default=None)


class Principal(TimestampMixin, Base):
    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("workspace_id", "username"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[PrincipalKind] = mapped_column(
        StrEnumType(PrincipalKind, 16), default=PrincipalKind.USER
    )
    username: Mapped[str] = mapped_column(String(150))
    full_name: Mapped[str] = mapped_column(String(255), default="")

    workspace: Mapped[Workspace] = relationship(lazy="raise")


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 16))
    #: the first characters of the key, shown in listings so a key can be recognised
    prefix: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the whole key (keys are 256-bit random, so a slow hash adds nothing)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    #: the key stops working at this moment (set at creation, or by a rotation's grace period)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: when the key last authenticated, written at most once a minute per key and process
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    principal: Mapped[Principal] = relationship(lazy="raise")
