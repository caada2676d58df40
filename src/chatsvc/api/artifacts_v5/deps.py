"""Who calls the artifacts-v5 face: the seed's three headers (X-Api-Key and authorization, the
security schemes every face documents, and the X-MCP header parameter), and the face's read
cache."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from chatsvc.api.deps import ApiKeyHeader, AuthorizationValue, authenticate_key
from chatsvc.auth.service import AuthContext
from chatsvc.kit.errors import Unauthenticated
from chatsvc.services import ArtifactsCacheDep, AuthenticatorDep

_BEARER = "bearer "


def key_from_authorization(value: str | None) -> str | None:
    """The key in an authorization header: `Bearer KEY`, or the bare key (`KEY`, no scheme)."""
    if value is None:
        return None
    text = value.strip()
    if text[: len(_BEARER)].lower() == _BEARER:
        return text[len(_BEARER) :].strip() or None
    if " " in text:
        scheme = text.split(" ", 1)[0]
        raise Unauthenticated(
            f"Unsupported authorization scheme {scheme!r}: send 'authorization: Bearer KEY', "
            "'authorization: KEY' or 'X-Api-Key: KEY'.",
            code="invalid_api_key",
        )
    return text or None


async def face_auth(
    request: Request,
    authenticator: AuthenticatorDep,
    x_api_key: ApiKeyHeader,
    authorization: AuthorizationValue,
    x_mcp: Annotated[
        str | None,
        Header(
            alias="X-MCP",
            max_length=255,
            description="Marks a call made by an MCP client on an agent's behalf (any value, "
            "e.g. `1` or the client's name). Accepted on every endpoint of this face; it "
            "changes neither the authentication nor the answer, and is kept on the request "
            "(`mcp_client`) for logs and metrics.",
        ),
    ] = None,
) -> AuthContext:
    if x_mcp is not None:
        request.scope.setdefault("state", {})["mcp_client"] = x_mcp
    return await authenticate_key(
        request, authenticator, x_api_key or key_from_authorization(authorization)
    )


FaceAuthDep = Annotated[AuthContext, Depends(face_auth)]


async def face_admin(auth: FaceAuthDep) -> AuthContext:
    """An admin key (the docs' permissions read this dependency off each route)."""
    auth.require_admin("use this endpoint")
    return auth


FaceAdminDep = Annotated[AuthContext, Depends(face_admin)]


CacheDep = ArtifactsCacheDep
