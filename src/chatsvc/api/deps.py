"""Dependencies every face shares: who is calling (API key auth), admin-only guards, and the
Idempotency-Key header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from chatsvc.auth.keys import Authenticator
from chatsvc.auth.service import AuthContext
from chatsvc.kit.errors import Unauthenticated
from chatsvc.services import AuthenticatorDep

api_key_header = APIKeyHeader(
    name="X-Api-Key", auto_error=False, description="The API key, as `X-Api-Key: KEY`."
)
bearer = HTTPBearer(auto_error=False, description="The API key, as `Authorization: Bearer KEY`.")
#: The X-Api-Key header, which every face accepts.
ApiKeyHeader = Annotated[str | None, Depends(api_key_header)]


async def get_auth(
    request: Request,
    authenticator: AuthenticatorDep,
    header_key: ApiKeyHeader,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> AuthContext:
    return await authenticate_key(
        request, authenticator, header_key or (credentials.credentials if credentials else None)
    )


async def authenticate_key(
    request: Request, authenticator: Authenticator, raw: str | None
) -> AuthContext:
    """The caller behind a raw API key, however a face reads it from the request."""
    if not raw:
        raise Unauthenticated(
            "Missing API key: send it as 'X-Api-Key: KEY' or 'Authorization: Bearer KEY'. "
            "`make run` prints a bootstrap admin key on first start.",
            code="missing_api_key",
        )
    # No session of the request's: a request that then streams or waits holds no connection.
    auth = await authenticator.authenticate(raw.strip())
    if auth is None:
        raise Unauthenticated("Unknown or revoked API key.", code="invalid_api_key")
    request.scope.setdefault("state", {})["principal_id"] = auth.principal_id
    return auth


AuthDep = Annotated[AuthContext, Depends(get_auth)]


async def require_admin(auth: AuthDep) -> AuthContext:
    auth.require_admin("change this resource")
    return auth


AdminDep = Annotated[AuthContext, Depends(require_admin)]


def idempotency_header(description: str | None = None) -> Any:
    """The Idempotency-Key header of a POST that must not run twice; `description` says what a
    retry with the same key gets on that route. An empty key is refused (422), not taken as
    "no key": a client that sends the header means to be idempotent."""
    return Header(min_length=1, max_length=255, description=description)


IdempotencyKey = Annotated[str | None, idempotency_header()]
