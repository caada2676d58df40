"""Cognitive face: /secrets/ (seed 003, docs/seeds/), the workspace's secrets, admin only and
write-only: values go in, names come out. Translation only: rules live in chatsvc.secrets."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Body, Depends
from pydantic import BaseModel, Field

from chatsvc.api.deps import AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.kit.validation import InputModel
from chatsvc.kit.web import RouteSpec, SlashRouter, error_responses
from chatsvc.secrets.store import (
    KEEP,
    MAX_NAME_LENGTH,
    MAX_ORIGINS,
    MAX_VALUE_BYTES,
    Keep,
    Origins,
    SecretItem,
)
from chatsvc.services import SecretStoreDep

router = SlashRouter(tags=["secrets"])

#: what the API shows instead of a value: fixed, so it does not even tell the length
MASK = "********"

NAME_RULES = (
    f"1-{MAX_NAME_LENGTH} letters, digits and dashes (Key Vault's rules; with the Azure backend "
    "the workspace prefix `ws<ID>-` counts against the length). Case-insensitive: `API-KEY` and "
    "`api-key` are one secret."
)
INVALID = error_responses(
    {
        400: "A name that breaks Key Vault's rules, a value that is empty or longer than "
        f"{MAX_VALUE_BYTES} bytes, or an allowed origin that is not an http(s) origin; the "
        "detail says which."
    }
)
NOT_FOUND = error_responses({404: "No secret of that name in this workspace."})
UPSTREAM = error_responses(
    {
        502: "Key Vault refused or failed the request.",
        503: "Key Vault cannot be reached, or a stored value cannot be decrypted with the "
        "configured key.",
        504: "Key Vault did not answer in time.",
    }
)


async def require_admin(auth: AuthDep) -> AuthContext:
    """AdminDep's rule, with a message that also fits GET: member keys get 403."""
    auth.require_admin("manage the workspace's secrets")
    return auth


AdminDep = Annotated[AuthContext, Depends(require_admin)]


StoreDep = SecretStoreDep


# --- wire schemas --------------------------------------------------------------------------------


ORIGINS = (
    "Extension (not in seed 003): the origins (`https://host[:port]`, at most "
    f"{MAX_ORIGINS}) the value may be sent to, checked whenever an MCP server's or a retrieval "
    "backend's header references the secret; a request to any other origin is refused and the "
    "value is not sent. `null` (the default): any origin, as before this field existed."
)


class SecretIn(InputModel):
    """A secret's name and value."""

    name: str = Field(description=NAME_RULES, examples=["OPENAI-API-KEY"])
    value: str = Field(
        description=f"The secret itself, 1 to {MAX_VALUE_BYTES} bytes (UTF-8). Never returned.",
        examples=["sk-live-..."],
    )
    allowed_origins: list[str] | None = Field(
        default=None,
        description=ORIGINS + " On PUT, leaving the field out keeps the secret's origins.",
        examples=[["https://crm.example.com"]],
    )

    def origins(self) -> Origins | Literal[Keep.KEEP]:
        """What PUT does to the origins: the ones sent, null, or KEEP when left out."""
        if "allowed_origins" not in self.model_fields_set:
            return KEEP
        return None if self.allowed_origins is None else tuple(self.allowed_origins)


class SecretNameIn(InputModel):
    """The name of the secret to delete."""

    name: str = Field(description=NAME_RULES, examples=["OPENAI-API-KEY"])
    value: str | None = Field(
        default=None, description="Ignored; accepted because the seed's example body has it."
    )


class SecretOut(BaseModel):
    """A secret, its value masked."""

    name: str = Field(description="The name, with the case it was created with.")
    value: str = Field(
        description=f"Always `{MASK}`: values are write-only. Reference a secret in a tool's "
        "header as `{{secret:NAME}}`; it is filled in when the tool is called.",
        examples=[MASK],
    )
    allowed_origins: list[str] | None = Field(
        default=None, description=ORIGINS, examples=[["https://crm.example.com"]]
    )


class DeletedSecretOut(BaseModel):
    """The secret deleted."""

    name: str


def _out(item: SecretItem) -> SecretOut:
    origins = None if item.allowed_origins is None else list(item.allowed_origins)
    return SecretOut(name=item.name, value=MASK, allowed_origins=origins)


# --- endpoints -----------------------------------------------------------------------------------


async def list_secrets(auth: AdminDep, store: StoreDep) -> list[SecretOut]:
    return [_out(item) for item in await store.list(auth.workspace_id)]


async def create_secret(body: SecretIn, auth: AdminDep, store: StoreDep) -> SecretOut:
    """Stores a new secret of the workspace (admin keys); the answer masks its value. A name in use
    is 409."""
    origins = None if body.allowed_origins is None else tuple(body.allowed_origins)
    return _out(await store.create(auth.workspace_id, body.name, body.value, origins))


async def update_secret(body: SecretIn, auth: AdminDep, store: StoreDep) -> SecretOut:
    """Replaces the value (and, when sent, the allowed origins) of an existing secret (admin keys);
    the answer masks it. An unknown name is 404."""
    return _out(await store.update(auth.workspace_id, body.name, body.value, body.origins()))


async def delete_secret(
    body: Annotated[SecretNameIn, Body()], auth: AdminDep, store: StoreDep
) -> DeletedSecretOut:
    item = await store.delete(auth.workspace_id, body.name)
    return DeletedSecretOut(name=item.name)


# One path, four methods: the routes as a table.
router.add_routes((
    RouteSpec("GET", "/secrets/", list_secrets, list[SecretOut], 200, "list_secrets",
              "List the workspace's secrets", UPSTREAM,
              description="Every secret of the workspace, ordered by name, as a plain array "
              f"(empty when there are none). Values are masked (`{MASK}`)."),
    RouteSpec("POST", "/secrets/", create_secret, SecretOut, 201, "create_secret",
              "Create a secret",
              {**INVALID, **error_responses({409: "A secret of that name exists already."}),
               **UPSTREAM}),
    RouteSpec("PUT", "/secrets/", update_secret, SecretOut, 200, "update_secret",
              "Change a secret's value", {**INVALID, **NOT_FOUND, **UPSTREAM}),
    RouteSpec("DELETE", "/secrets/", delete_secret, DeletedSecretOut, 200, "delete_secret",
              "Delete a secret", {**INVALID, **NOT_FOUND, **UPSTREAM},
              description='The body names the secret (`{"name": ...}`; a `value` is ignored). '
              "Tools whose headers reference it fail clearly until a secret of that name "
              "exists again."),
))  # fmt: skip
