"""Workspaces, principals and API keys: creation, authentication and the first-start bootstrap."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.models import ApiKey, Principal, PrincipalKind, Role, Workspace
from chatsvc.kit.errors import Conflict, Forbidden, Invalid, NotFound, or_not_found

KEY_PREFIX = "csk_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SERVICE_USERNAME = "service"
BOOTSTRAP_USERNAME = "admin"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling: the key's workspace, the principal it acts as, and its role."""

    workspace_id: int
    principal_id: int
    role: Role
    api_key_id: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise Forbidden(f"An admin API key is required to {action}; this key has role member.")


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def generate_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


async def authenticate(session: AsyncSession, raw_key: str) -> AuthContext | None:
    """The caller behind an API key, or None when the key is unknown or revoked."""
    if not raw_key or len(raw_key) > 256:
        return None
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.workspace_id, ApiKey.principal_id, ApiKey.role).where(
                ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return AuthContext(
        workspace_id=row.workspace_id,
        principal_id=row.principal_id,
        role=Role(row.role),
        api_key_id=row.id,
    )


async def create_workspace(session: AsyncSession, slug: str, name: str | None = None) -> Workspace:
    """A workspace and its service principal (the identity of keys made without a user)."""
    if not _SLUG.match(slug):
        raise Invalid(f"Workspace slug {slug!r} must be lowercase letters, digits and dashes.")
    if await session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        raise Conflict(f"Workspace {slug!r} already exists.")
    workspace = Workspace(slug=slug, name=name or slug, webhook_secret=generate_webhook_secret())
    session.add(workspace)
    await session.flush()
    session.add(
        Principal(
            workspace_id=workspace.id,
            kind=PrincipalKind.SERVICE,
            username=SERVICE_USERNAME,
            full_name=f"{workspace.name} service",
        )
    )
    await session.flush()
    return workspace


async def webhook_secret(session: AsyncSession, workspace_id: int) -> str:
    """The workspace's callback signing secret, made and stored on first use when it has none.
    Concurrent first uses agree: only the UPDATE that finds it still empty writes."""
    current = await session.scalar(
        select(Workspace.webhook_secret).where(Workspace.id == workspace_id)
    )
    if current:
        return current
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id, Workspace.webhook_secret.is_(None))
        .values(webhook_secret=generate_webhook_secret())
        .execution_options(synchronize_session=False)
    )
    stored = await session.scalar(
        select(Workspace.webhook_secret)
        .where(Workspace.id == workspace_id)
        .execution_options(populate_existing=True)
    )
    if not stored:
        raise NotFound(f"Workspace {workspace_id} not found.")
    return stored


async def get_workspace_by_slug(session: AsyncSession, slug: str) -> Workspace:
    workspace = await session.scalar(select(Workspace).where(Workspace.slug == slug))
    return or_not_found(workspace, f"Workspace {slug!r} not found.")


async def get_or_create_principal(
    session: AsyncSession,
    workspace_id: int,
    username: str,
    *,
    full_name: str = "",
    kind: PrincipalKind = PrincipalKind.USER,
) -> Principal:
    principal = await session.scalar(
        select(Principal).where(
            Principal.workspace_id == workspace_id, Principal.username == username
        )
    )
    if principal is None:
        principal = Principal(
            workspace_id=workspace_id, username=username, full_name=full_name, kind=kind
        )
        session.add(principal)
        await session.flush()
    return principal


async def create_api_key(
    session: AsyncSession,
    workspace_id: int,
    role: Role,
    *,
    username: str | None = None,
    full_name: str = "",
    name: str = "",
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key (returned once, in clear) bound to a user or to the service principal."""
    if role is Role.MEMBER and username is None:
        raise Invalid("A member key must be bound to a user (give a username).")
    raw = raw_key or generate_key()
    if len(raw) < 16:
        raise Invalid("An API key must be at least 16 characters long.")
    principal = await get_or_create_principal(
        session,
        workspace_id,
        username or SERVICE_USERNAME,
        full_name=full_name,
        kind=PrincipalKind.USER if username else PrincipalKind.SERVICE,
    )
    key_hash = hash_key(raw)
    if await session.scalar(select(ApiKey.id).where(ApiKey.key_hash == key_hash)) is not None:
        raise Conflict("This API key is already registered.")
    key = ApiKey(
        workspace_id=workspace_id,
        principal_id=principal.id,
        role=role,
        name=name,
        prefix=raw[:12],
        key_hash=key_hash,
    )
    session.add(key)
    await session.flush()
    return key, raw
