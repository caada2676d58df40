"""Cognitive face: /api-keys/, the workspace's API keys over the API (admin keys only; to a
member key the routes do not exist: 404). A key's secret is in the answer that creates it (or
rotates to it) and nowhere else. Translation only: rules live in chatsvc.auth.service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field

from chatsvc.api.cognitive.params import path_id
from chatsvc.api.deps import AuthDep
from chatsvc.auth import service as auth_service
from chatsvc.auth.keys import Authenticator
from chatsvc.auth.models import ApiKey, Role
from chatsvc.auth.service import (
    DEFAULT_ROTATION_GRACE,
    MAX_ROTATION_GRACE,
    AuthContext,
)
from chatsvc.kit.errors import NotFound
from chatsvc.kit.validation import InputModel
from chatsvc.kit.web import PageDep, PageOut, RouteSpec, SlashRouter, envelope, error_responses
from chatsvc.services import AuthenticatorDep, SessionDep

router = SlashRouter(tags=["api-keys"])

ApiKeyId = Annotated[int, path_id("The API key's id.")]
MAX_GRACE_SECONDS = int(MAX_ROTATION_GRACE.total_seconds())
DEFAULT_GRACE_SECONDS = int(DEFAULT_ROTATION_GRACE.total_seconds())


async def require_key_admin(auth: AuthDep) -> AuthContext:
    """Admin keys only; to a member key the key management routes do not exist (404), so it
    learns nothing about them."""
    if not auth.is_admin:
        raise NotFound("Not found.")
    return auth


KeyAdminDep = Annotated[AuthContext, Depends(require_key_admin)]

NOT_FOUND = error_responses(
    {404: "No API key with that id in this workspace, or the caller's key is a member key."}
)
MEMBER = error_responses({404: "The caller's key is a member key (the routes are admin only)."})
SELF = error_responses({409: "The key is the caller's own key: another admin key revokes it."})
INVALID = error_responses(
    {400: "A member key without a user, or an expiry that is not in the future."}
)


# --- wire schemas --------------------------------------------------------------------------------

#: the roles as plain strings (an enum would be a second `Role` schema beside the chat roles')
KeyRole = Literal["admin", "member"]


class ApiKeyIn(InputModel):
    """A new API key: its role, the user it acts as, a label and an optional expiry."""

    role: KeyRole = Field(
        default="member",
        description="`admin` (everything in the workspace) or `member` (bound to a user).",
    )
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=150,
        description="The username the key acts as, created when missing. Required for member "
        "keys; an admin key without a user acts as the workspace's service principal.",
        examples=["alice"],
    )
    full_name: str = Field(
        default="", max_length=255, description="The user's full name, when the user is new."
    )
    name: str = Field(
        default="",
        max_length=255,
        description="A label to recognise the key by.",
        examples=["billing backend"],
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the key stops working (with a time zone, in the future); `null`: never.",
    )


class RotateIn(InputModel):
    """How long the rotated key keeps working."""

    grace_seconds: int = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="Seconds the old key stays valid after the rotation (0: it stops at once; "
        f"default {DEFAULT_GRACE_SECONDS}, at most {MAX_GRACE_SECONDS}). Never extends the old "
        "key's own expiry.",
    )


class ApiKeyOut(BaseModel):
    """An API key as listed: never its secret."""

    id: int = Field(description="The key's id.")
    prefix: str = Field(description="The first characters of the key, to recognise it by.")
    name: str = Field(description="The key's label.")
    role: KeyRole = Field(description="`admin` or `member`.")
    user: str = Field(
        description="The username the key acts as (`service` for the workspace's "
        "service principal)."
    )
    created_at: datetime = Field(description="When the key was made.")
    last_used_at: datetime | None = Field(
        description="When the key last authenticated a request (recorded at most once a minute); "
        "`null`: never."
    )
    expires_at: datetime | None = Field(description="When the key stops working; `null`: never.")
    revoked_at: datetime | None = Field(description="When the key was revoked; `null`: it is not.")


class ApiKeyCreatedOut(ApiKeyOut):
    """A key just made: the only answer that carries its secret."""

    key: str = Field(
        description="The whole key, shown this once: store it now, it cannot be read again."
    )


class ApiKeyPage(PageOut[ApiKeyOut]):
    """One page of the workspace's API keys."""


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        prefix=key.prefix,
        name=key.name,
        role=key.role.value,
        user=key.principal.username,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def _created(key: ApiKey, raw: str) -> ApiKeyCreatedOut:
    return ApiKeyCreatedOut(**_out(key).model_dump(), key=raw)


async def _changed(session: SessionDep, authenticator: Authenticator) -> None:
    """Commit first, then tell every replica: none may read the key again from a stale cache."""
    await session.commit()
    await authenticator.keys_changed()


# --- endpoints -----------------------------------------------------------------------------------


async def list_api_keys(
    request: Request, session: SessionDep, auth: KeyAdminDep, page: PageDep
) -> dict[str, Any]:
    result = await auth_service.list_api_keys(session, auth.workspace_id, page)
    return envelope(request, result, [_out(key) for key in result.items])


async def create_api_key(
    body: ApiKeyIn, session: SessionDep, auth: KeyAdminDep
) -> ApiKeyCreatedOut:
    key, raw = await auth_service.create_api_key(
        session,
        auth.workspace_id,
        Role(body.role),
        username=body.user,
        full_name=body.full_name,
        name=body.name,
        expires_at=body.expires_at,
    )
    return _created(key, raw)


async def get_api_key(key_id: ApiKeyId, session: SessionDep, auth: KeyAdminDep) -> ApiKeyOut:
    return _out(await auth_service.get_api_key(session, auth.workspace_id, key_id))


async def revoke_api_key(
    key_id: ApiKeyId, session: SessionDep, auth: KeyAdminDep, authenticator: AuthenticatorDep
) -> ApiKeyOut:
    key = await auth_service.revoke_api_key(session, auth, key_id)
    out = _out(key)
    await _changed(session, authenticator)
    return out


async def rotate_api_key(
    key_id: ApiKeyId,
    session: SessionDep,
    auth: KeyAdminDep,
    authenticator: AuthenticatorDep,
    body: Annotated[RotateIn | None, Body()] = None,
) -> ApiKeyCreatedOut:
    grace = timedelta(seconds=(body or RotateIn()).grace_seconds)
    key, raw = await auth_service.rotate_api_key(session, auth, key_id, grace)
    out = _created(key, raw)
    await _changed(session, authenticator)
    return out


router.add_routes((
    RouteSpec("GET", "/api-keys/", list_api_keys, ApiKeyPage, 200, "list_api_keys",
              "List the workspace's API keys", MEMBER,
              description="Every key of the workspace (revoked and expired ones too), newest "
              "first, a page at a time (`page`, `page_size`). Never a secret: `prefix` "
              "identifies a key. Admin keys only."),
    RouteSpec("POST", "/api-keys/", create_api_key, ApiKeyCreatedOut, 201, "create_api_key",
              "Create an API key", {**MEMBER, **INVALID},
              description="Makes a key for a user (created when missing) or, for an admin key "
              "without a user, for the workspace's service principal. The answer's `key` is "
              "the secret, shown this once. Admin keys only."),
    RouteSpec("GET", "/api-keys/{key_id}/", get_api_key, ApiKeyOut, 200, "get_api_key",
              "Get an API key", NOT_FOUND,
              description="One key of the workspace, without its secret. Admin keys only."),
    RouteSpec("DELETE", "/api-keys/{key_id}/", revoke_api_key, ApiKeyOut, 200, "revoke_api_key",
              "Revoke an API key", {**NOT_FOUND, **SELF},
              description="The key stops working at once, on every replica (401 from then on). "
              "Revoking a revoked key changes nothing. The answer is the key, `revoked_at` set. "
              "Admin keys only; a key cannot revoke itself (409): another admin key does it."),
    RouteSpec("POST", "/api-keys/{key_id}/rotate/", rotate_api_key, ApiKeyCreatedOut, 201,
              "rotate_api_key", "Rotate an API key",
              {**NOT_FOUND, **error_responses(
                  {409: "The key is revoked or expired, or it is the caller's own key."})},
              description="Makes a new key with the old one's user, role, name and expiry "
              "(its secret in `key`, shown this once) and lets the old key work for "
              f"`grace_seconds` more (default {DEFAULT_GRACE_SECONDS}, at most "
              f"{MAX_GRACE_SECONDS}); then it gets 401. The body may be left out. Admin keys "
              "only; a key cannot rotate itself (409): another admin key does it."),
))  # fmt: skip
