"""Workspace, principal and API key queries: lookups by slug, username and key hash, and the
webhook secret written only while a workspace has none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import joinedload

from chatsvc.auth.models import ApiKey, Principal, Role, Workspace
from chatsvc.kit.db import utcnow
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What an active API key stands for."""

    api_key_id: int
    workspace_id: int
    principal_id: int
    role: Role
    expires_at: datetime | None = None


class WorkspaceRepository(RepositoryBase[Workspace]):
    model = Workspace

    async def any_exists(self) -> bool:
        return await self.session.scalar(select(Workspace.id).limit(1)) is not None

    async def slug_taken(self, slug: str) -> bool:
        return (
            await self.session.scalar(select(Workspace.id).where(Workspace.slug == slug))
            is not None
        )

    async def by_slug(self, slug: str) -> Workspace | None:
        found: Workspace | None = await self.session.scalar(
            select(Workspace).where(Workspace.slug == slug)
        )
        return found

    async def slug_of(self, workspace_id: int) -> str | None:
        found: str | None = await self.session.scalar(
            select(Workspace.slug).where(Workspace.id == workspace_id)
        )
        return found

    async def webhook_secret(self, workspace_id: int, *, fresh: bool = False) -> str | None:
        """The stored secret (None while it has none, or when there is no such workspace).
        `fresh` reads the row again, past what this session holds."""
        statement = select(Workspace.webhook_secret).where(Workspace.id == workspace_id)
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        found: str | None = await self.session.scalar(statement)
        return found

    async def set_webhook_secret_if_missing(self, workspace_id: int, secret: str) -> None:
        """Store `secret` only while the workspace has none: of concurrent first uses, the first
        UPDATE writes and the others (waiting on its row lock) find it set and change nothing."""
        await self.session.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id, Workspace.webhook_secret.is_(None))
            .values(webhook_secret=secret)
            .execution_options(synchronize_session=False)
        )


class PrincipalRepository(RepositoryBase[Principal]):
    model = Principal

    async def by_username(self, workspace_id: int, username: str) -> Principal | None:
        found: Principal | None = await self.session.scalar(
            select(Principal).where(
                Principal.workspace_id == workspace_id, Principal.username == username
            )
        )
        return found


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def active_owner(self, key_hash: str) -> KeyOwner | None:
        """Who the key with this hash stands for, unless it was revoked or has expired."""
        row = (
            await self.session.execute(
                select(
                    ApiKey.id,
                    ApiKey.workspace_id,
                    ApiKey.principal_id,
                    ApiKey.role,
                    ApiKey.expires_at,
                ).where(
                    ApiKey.key_hash == key_hash,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return KeyOwner(row.id, row.workspace_id, row.principal_id, Role(row.role), row.expires_at)

    def _in_workspace(self, workspace_id: int) -> Select[ApiKey]:
        return (
            select(ApiKey)
            .options(joinedload(ApiKey.principal))
            .where(ApiKey.workspace_id == workspace_id)
        )

    async def page(self, workspace_id: int, params: PageParams) -> Page[ApiKey]:
        """The workspace's keys (revoked and expired ones too), newest first, with their users."""
        return await self.paginate(
            self._in_workspace(workspace_id).order_by(ApiKey.id.desc()), params
        )

    async def in_workspace(self, workspace_id: int, key_id: int) -> ApiKey | None:
        return await self.get_one_or_none(
            self._in_workspace(workspace_id).where(ApiKey.id == key_id), fresh=True
        )

    async def touch(self, key_id: int, when: datetime, every: timedelta) -> None:
        """Record a use of the key, unless one was recorded less than `every` ago."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < when - every),
            )
            .values(last_used_at=when)
            .execution_options(synchronize_session=False)
        )

    async def hash_taken(self, key_hash: str) -> bool:
        """Whether a key (revoked or not) has this hash."""
        return (
            await self.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == key_hash))
            is not None
        )
