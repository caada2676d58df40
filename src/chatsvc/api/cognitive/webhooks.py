"""Cognitive face: /webhooks/, the workspace's event webhook endpoints (admin keys only; a member
key gets 404, as if the routes did not exist) and each endpoint's delivery log. Translation only:
rules live in chatsvc.webhooks.events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from chatsvc.api.cognitive.params import path_id
from chatsvc.api.deps import AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.kit.errors import NotFound
from chatsvc.kit.repository import RepositoryBase
from chatsvc.kit.validation import MAX_ID, InputModel
from chatsvc.kit.web import PageDep, PageOut, RouteSpec, SettingsDep, SlashRouter, error_responses
from chatsvc.services import SessionDep
from chatsvc.webhooks import events as service
from chatsvc.webhooks.models import WebhookDelivery, WebhookEndpoint

router = SlashRouter(tags=["webhooks"])

EndpointId = Annotated[int, path_id("The webhook endpoint's id.")]
EventType = Literal["chat.completed", "chat.failed", "export.completed", "export.failed"]

HIDDEN = error_responses(
    {
        404: "No such endpoint in this workspace, or the key is not an admin key (members do not "
        "see webhooks at all)."
    }
)
INVALID = error_responses(
    {
        400: "A URL the outbound policy refuses, an unknown or empty event list, or a secret that "
        "is not `whsec_` + base64, or (PATCH) a field set to null; the detail says which."
    }
)


async def require_admin(auth: AuthDep) -> AuthContext:
    """Webhooks are the workspace's configuration: a member key finds nothing here (404)."""
    if not auth.is_admin:
        raise NotFound("Not found.")
    return auth


AdminDep = Annotated[AuthContext, Depends(require_admin)]


# --- wire schemas --------------------------------------------------------------------------------

URL = (
    "Where events are POSTed, signed per Standard Webhooks. Checked against the deployment's "
    "outbound policy (by default https on port 443 to a public address)."
)
EVENTS = "The event types delivered to this endpoint (at least one)."
KEY_DOC = (  # the field's description, not a secret
    "The signing secret, `whsec_` + base64 of the HMAC key. Left out on create: one is "
    "generated and shown once, in the create response."
)


class WebhookIn(InputModel):
    """A new endpoint: where, which events, and optionally its secret."""

    url: str = Field(max_length=2048, description=URL, examples=["https://hooks.example.com/chat"])
    events: list[EventType] = Field(min_length=1, max_length=4, description=EVENTS)
    secret: str | None = Field(default=None, max_length=255, description=KEY_DOC)
    description: str = Field(default="", max_length=255, description="A note for people.")
    enabled: bool = Field(default=True, description="Whether events are delivered to it.")


class WebhookPatch(InputModel):
    """The fields to change; those left out are kept."""

    url: str | None = Field(default=None, max_length=2048, description=URL)
    events: list[EventType] | None = Field(
        default=None, min_length=1, max_length=4, description=EVENTS
    )
    secret: str | None = Field(
        default=None, max_length=255, description="A new signing secret (`whsec_` + base64)."
    )
    description: str | None = Field(default=None, max_length=255, description="A note.")
    enabled: bool | None = Field(default=None, description="Whether events are delivered.")


class WebhookOut(BaseModel):
    """An endpoint; its secret is never shown again after creation."""

    id: int = Field(description="The endpoint's id.")
    url: str = Field(description=URL)
    events: list[str] = Field(description=EVENTS)
    description: str = Field(description="A note for people.")
    enabled: bool = Field(description="Whether events are delivered to it.")
    created_at: datetime = Field(description="When it was registered.")
    updated_at: datetime = Field(description="When it last changed.")


class WebhookCreatedOut(WebhookOut):
    """The endpoint just registered, with its secret: the only time it is shown."""

    secret: str = Field(description="The signing secret: keep it, it is not shown again.")


class WebhookPage(PageOut[WebhookOut]):
    """A page of endpoints."""


class DeliveryOut(BaseModel):
    """One delivery of one event to the endpoint (all the attempts of one delivery job run)."""

    id: int = Field(description="The log entry's id (use it as `before` for older entries).")
    event_type: str = Field(description="The event delivered.", examples=["chat.completed"])
    webhook_id: str = Field(description="The `webhook-id` header sent (the same on retries).")
    succeeded: bool = Field(description="Whether the receiver answered 2xx.")
    attempts: int = Field(description="HTTP attempts made in this run.")
    status_code: int | None = Field(description="The last HTTP status; null: no answer.")
    error: str | None = Field(description="Why it failed; null when it succeeded.")
    created_at: datetime = Field(description="When the run ended.")


class DeliveryPage(BaseModel):
    """The latest deliveries, newest first."""

    results: list[DeliveryOut] = Field(description="The entries of this page.")
    next: str | None = Field(description="URL of the next (older) page; null on the last one.")


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut.model_validate(endpoint, from_attributes=True)


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_type=row.event_type,
        webhook_id=row.msg_id,
        succeeded=row.succeeded,
        attempts=row.attempts,
        status_code=row.status_code,
        error=row.error,
        created_at=row.created_at,
    )


# --- endpoints -----------------------------------------------------------------------------------


async def create_webhook(
    body: WebhookIn, session: SessionDep, settings: SettingsDep, auth: AdminDep
) -> WebhookCreatedOut:
    endpoint = await service.create_endpoint(
        session,
        settings,
        auth.workspace_id,
        url=body.url,
        events=body.events,
        secret=body.secret,
        description=body.description,
        enabled=body.enabled,
    )
    return WebhookCreatedOut(**_out(endpoint).model_dump(), secret=endpoint.secret)


async def list_webhooks(
    request: Request, session: SessionDep, auth: AdminDep, page: PageDep
) -> WebhookPage:
    found = await RepositoryBase[WebhookEndpoint](session).paginate(
        service.endpoints_statement(auth.workspace_id), page
    )
    return WebhookPage.of(request, found, [_out(e) for e in found.items])


async def get_webhook(id: EndpointId, session: SessionDep, auth: AdminDep) -> WebhookOut:
    return _out(await service.get_endpoint(session, auth.workspace_id, id))


async def update_webhook(
    id: EndpointId, body: WebhookPatch, session: SessionDep, settings: SettingsDep, auth: AdminDep
) -> WebhookOut:
    changes = body.model_dump(exclude_unset=True)
    return _out(await service.update_endpoint(session, settings, auth.workspace_id, id, changes))


async def delete_webhook(id: EndpointId, session: SessionDep, auth: AdminDep) -> Response:
    await service.delete_endpoint(session, auth.workspace_id, id)
    return Response(status_code=204)


async def list_webhook_deliveries(
    request: Request,
    id: EndpointId,
    session: SessionDep,
    auth: AdminDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Entries per page.")] = 20,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only entries older than this id.")
    ] = None,
) -> DeliveryPage:
    rows = await service.deliveries(session, auth.workspace_id, id, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    following = (
        str(request.url.include_query_params(before=rows[-1].id, limit=limit)) if more else None
    )
    return DeliveryPage(results=[_delivery(r) for r in rows], next=following)


router.add_routes((
    RouteSpec("POST", "/webhooks/", create_webhook, WebhookCreatedOut, 201, "create_webhook",
              "Register an event webhook endpoint", {**INVALID, **HIDDEN},
              description="Registers an endpoint (admin keys) for chat.completed, chat.failed, "
              "export.completed and/or export.failed. The answer holds the signing secret, "
              "generated unless given: the only time it is shown."),
    RouteSpec("GET", "/webhooks/", list_webhooks, WebhookPage, 200, "list_webhooks",
              "List the event webhook endpoints", HIDDEN,
              description="The workspace's endpoints (admin keys), by id, paginated by page and "
              "page_size; secrets are not shown."),
    RouteSpec("GET", "/webhooks/{id}/", get_webhook, WebhookOut, 200, "get_webhook",
              "Read an event webhook endpoint", HIDDEN,
              description="One endpoint of the workspace (admin keys); its secret is not shown."),
    RouteSpec("PATCH", "/webhooks/{id}/", update_webhook, WebhookOut, 200, "update_webhook",
              "Change an event webhook endpoint", {**INVALID, **HIDDEN},
              description="Changes the fields sent (admin keys): URL (checked against the "
              "outbound policy), events, secret, description, enabled."),
    RouteSpec("DELETE", "/webhooks/{id}/", delete_webhook, None, 204, "delete_webhook",
              "Delete an event webhook endpoint", HIDDEN,
              description="Removes the endpoint and its delivery log (admin keys); deliveries "
              "already queued for it are dropped."),
    RouteSpec("GET", "/webhooks/{id}/deliveries/", list_webhook_deliveries, DeliveryPage, 200,
              "list_webhook_deliveries", "Read an endpoint's delivery log", HIDDEN,
              description="The endpoint's latest deliveries, newest first (admin keys): event, "
              "webhook-id, outcome, attempts, last status and error. `next` pages to older "
              "entries; each page costs the same however long the log."),
))  # fmt: skip
