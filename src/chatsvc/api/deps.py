"""Dependencies every face shares: who is calling (API key auth), admin-only guards, and the
Idempotency-Key header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import APIKeyHeader
from fastapi.security.base import SecurityBase

from chatsvc.auth.keys import Authenticator
from chatsvc.auth.service import AuthContext
from chatsvc.kit.errors import Unauthenticated
from chatsvc.services import AuthenticatorDep

#: How a key is sent, documented once per header (the OpenAPI security schemes every
#: authenticated operation declares, from these dependencies): `X-Api-Key: KEY`, or the
#: Authorization header. When both are sent, X-Api-Key wins and Authorization is not read.
api_key_header = APIKeyHeader(
    name="X-Api-Key",
    scheme_name="ApiKeyAuth",
    auto_error=False,
    description="The API key, as `X-Api-Key: KEY`. When both this header and Authorization "
    "are sent, this one is used.",
)


class AuthorizationHeader(SecurityBase):
    """The Authorization header, documented as the bearer scheme (`Authorization: Bearer KEY`).
    It gives the header's raw value: each face reads the key from it (the messages-v1 and
    artifacts-v5 faces, after their seeds, also take the bare key, `authorization: KEY`)."""

    def __init__(self, description: str) -> None:
        self.model = HTTPBearerModel(description=description)
        self.scheme_name = "BearerAuth"

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("Authorization")


authorization_header = AuthorizationHeader(
    "The API key, as `Authorization: Bearer KEY` (the messages-v1 and artifacts-v5 faces also "
    "take the bare key, `Authorization: KEY`). Read only when X-Api-Key is not sent."
)
#: The X-Api-Key header, which every face accepts.
ApiKeyHeader = Annotated[str | None, Depends(api_key_header)]
#: The raw Authorization header (the same documented scheme on every face).
AuthorizationValue = Annotated[str | None, Depends(authorization_header)]


def bearer_key(value: str | None) -> str | None:
    """The key of `Authorization: Bearer KEY` (any other scheme, or none: no key)."""
    if not value:
        return None
    scheme, _, key = value.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


async def get_auth(
    request: Request,
    authenticator: AuthenticatorDep,
    header_key: ApiKeyHeader,
    authorization: AuthorizationValue,
) -> AuthContext:
    return await authenticate_key(request, authenticator, header_key or bearer_key(authorization))


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
