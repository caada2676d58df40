"""Workspaces, principals and API keys: creation, authentication and the first-start bootstrap."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.models import ApiKey, Principal, PrincipalKind, Role, Workspace
from chatsvc.auth.repository import ApiKeyRepository, PrincipalRepository, WorkspaceRepository
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import Conflict, Forbidden, Invalid, NotFound, or_not_found
from chatsvc.kit.pagination import Page, PageParams

KEY_PREFIX = "csk_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SERVICE_USERNAME = "service"
BOOTSTRAP_USERNAME = "admin"
#: how long a rotated key keeps working when the rotation names no grace period, and the most
#: a rotation may give it
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=30)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling: the key's workspace, the principal it acts as, and its role."""

    workspace_id: int
    principal_id: int
    role: Role
    api_key_id: int
    #: when the key stops working (None: never)
    expires_at: datetime | None = None

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
    return await authenticate_hash(session, hash_key(raw_key))


async def authenticate_hash(session: AsyncSession, key_hash: str) -> AuthContext | None:
    """The caller behind the API key with this hash, or None when unknown or revoked."""
    owner = await ApiKeyRepository(session).active_owner(key_hash)
    if owner is None:
        return None
    return AuthContext(
        workspace_id=owner.workspace_id,
        principal_id=owner.principal_id,
        role=owner.role,
        api_key_id=owner.api_key_id,
        expires_at=owner.expires_at,
    )


async def create_workspace(session: AsyncSession, slug: str, name: str | None = None) -> Workspace:
    """A workspace and its service principal (the identity of keys made without a user)."""
    if not _SLUG.match(slug):
        raise Invalid(f"Workspace slug {slug!r} must be lowercase letters, digits and dashes.")
    workspaces = WorkspaceRepository(session)
    if await workspaces.slug_taken(slug):
        raise Conflict(f"Workspace {slug!r} already exists.")
    workspace = await workspaces.add(
        Workspace(slug=slug, name=name or slug, webhook_secret=generate_webhook_secret())
    )
    await PrincipalRepository(session).add(
        Principal(
            workspace_id=workspace.id,
            kind=PrincipalKind.SERVICE,
            username=SERVICE_USERNAME,
            full_name=f"{workspace.name} service",
        )
    )
    return workspace


async def webhook_secret(session: AsyncSession, workspace_id: int) -> str:
    """The workspace's callback signing secret, made and stored on first use when it has none.
    Concurrent first uses agree: only the UPDATE that finds it still empty writes."""
    workspaces = WorkspaceRepository(session)
    current = await workspaces.webhook_secret(workspace_id)
    if current:
        return current
    await workspaces.set_webhook_secret_if_missing(workspace_id, generate_webhook_secret())
    stored = await workspaces.webhook_secret(workspace_id, fresh=True)
    if not stored:
        raise NotFound(f"Workspace {workspace_id} not found.")
    return stored


async def workspace_slug(session: AsyncSession, workspace_id: int) -> str:
    """The slug of the caller's workspace (what the OpenAI face names as a model's owner)."""
    slug = await WorkspaceRepository(session).slug_of(workspace_id)
    return or_not_found(slug, f"Workspace {workspace_id} not found.")


async def get_workspace_by_slug(session: AsyncSession, slug: str) -> Workspace:
    workspace = await WorkspaceRepository(session).by_slug(slug)
    return or_not_found(workspace, f"Workspace {slug!r} not found.")


async def get_or_create_principal(
    session: AsyncSession,
    workspace_id: int,
    username: str,
    *,
    full_name: str = "",
    kind: PrincipalKind = PrincipalKind.USER,
) -> Principal:
    principals = PrincipalRepository(session)
    principal = await principals.by_username(workspace_id, username)
    if principal is None:
        principal = await principals.add(
            Principal(workspace_id=workspace_id, username=username, full_name=full_name, kind=kind)
        )
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
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key (returned once, in clear) bound to a user or to the service principal."""
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at must be in the future.")
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
    keys = ApiKeyRepository(session)
    if await keys.hash_taken(key_hash):
        raise Conflict("This API key is already registered.")
    key = await keys.add(
        ApiKey(
            workspace_id=workspace_id,
            principal_id=principal.id,
            role=role,
            name=name,
            prefix=raw[:12],
            key_hash=key_hash,
            expires_at=expires_at,
        )
    )
    key.principal = principal
    return key, raw


async def list_api_keys(
    session: AsyncSession, workspace_id: int, params: PageParams
) -> Page[ApiKey]:
    return await ApiKeyRepository(session).page(workspace_id, params)


async def get_api_key(session: AsyncSession, workspace_id: int, key_id: int) -> ApiKey:
    key = await ApiKeyRepository(session).in_workspace(workspace_id, key_id)
    return or_not_found(key, f"API key {key_id} not found.")


def _not_itself(caller: AuthContext, key_id: int, action: str) -> None:
    """A key may not end itself: a mistaken call would lock its holder out (and the last admin
    key out of the API); another admin key does it."""
    if caller.api_key_id == key_id:
        raise Conflict(f"An API key cannot {action} itself; use another admin key.")


async def revoke_api_key(session: AsyncSession, caller: AuthContext, key_id: int) -> ApiKey:
    """Revoke a key of the caller's workspace (a revoked key stays revoked; its first revocation
    time is kept). Not the caller's own key."""
    key = await get_api_key(session, caller.workspace_id, key_id)
    _not_itself(caller, key_id, "revoke")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def rotate_api_key(
    session: AsyncSession, caller: AuthContext, key_id: int, grace: timedelta
) -> tuple[ApiKey, str]:
    """A new key with the old one's user, role, name and expiry; the old key keeps working for
    `grace` (never longer than it would have anyway), then stops. Not the caller's own key."""
    workspace_id = caller.workspace_id
    if grace < timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise Invalid(
            f"The grace period must be between 0 and {int(MAX_ROTATION_GRACE.total_seconds())} "
            "seconds."
        )
    old = await get_api_key(session, workspace_id, key_id)
    _not_itself(caller, key_id, "rotate")
    now = utcnow()
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise Conflict(f"API key {key_id} is revoked or expired; create a new key instead.")
    ends = now + grace
    new_expiry = old.expires_at
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    await session.flush()
    raw = generate_key()
    key = await ApiKeyRepository(session).add(
        ApiKey(
            workspace_id=workspace_id,
            principal_id=old.principal_id,
            role=old.role,
            name=old.name,
            prefix=raw[:12],
            key_hash=hash_key(raw),
            expires_at=new_expiry,
        )
    )
    key.principal = old.principal
    return key, raw
