"""Workspace, principal and API key queries: lookups by slug, username and key hash, and the
webhook secret written only while a workspace has none."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from chatsvc.auth.models import ApiKey, Principal, Role, Workspace
from chatsvc.kit.repository import RepositoryBase


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What an active API key stands for."""

    api_key_id: int
    workspace_id: int
    principal_id: int
    role: Role


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
        """Who the key with this hash stands for, unless it was revoked."""
        row = (
            await self.session.execute(
                select(ApiKey.id, ApiKey.workspace_id, ApiKey.principal_id, ApiKey.role).where(
                    ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return KeyOwner(row.id, row.workspace_id, row.principal_id, Role(row.role))

    async def hash_taken(self, key_hash: str) -> bool:
        """Whether a key (revoked or not) has this hash."""
        return (
            await self.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == key_hash))
            is not None
        )
