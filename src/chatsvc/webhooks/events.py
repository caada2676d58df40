"""Event webhooks: the endpoints a workspace registers (rules and storage) and the emission of
events to them. An event is emitted after the transaction that wrote its final state committed
(a turn's answer or failure, an export's end): one delivery job per subscribed endpoint, whose
idempotency key and webhook-id are the event's and the endpoint's, so an event is delivered at
most once per endpoint however often it is emitted, through the existing Standard Webhooks
delivery (chatsvc.webhooks.delivery) and its retries."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic_core import to_jsonable_python
from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.chats.models import Chat
from chatsvc.config import Settings
from chatsvc.jobs.queue import JobQueue, submit
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import Invalid, NotFound
from chatsvc.kit.outbound import OutboundPolicy, check_url
from chatsvc.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from chatsvc.webhooks.signing import new_secret, secret_key

logger = logging.getLogger("chatsvc.webhooks")

#: the job kind that delivers one event to one endpoint (chatsvc.webhooks.jobs)
DELIVER_EVENT = "deliver_event"

#: how long a process trusts what it last saw of "is any endpoint enabled, in any workspace":
#: where no one uses event webhooks a turn then costs no look-up (one query a process every
#: this many seconds); an endpoint registered through another process receives events from at
#: most this long after (one registered through this process, at once)
ANY_ENDPOINT_TTL_SECONDS: Final = 10.0
#: bumped when this process registers or changes an endpoint: its next event looks again at once
_REGISTERED = [0]


# --- endpoints -----------------------------------------------------------------------------------


def _check(
    settings: Settings, url: str | None, events: Sequence[str] | None, secret: str | None
) -> None:
    if url is not None:
        check_url(url, OutboundPolicy.from_settings(settings))
    if events is not None:
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise Invalid(f"Unknown event type(s) {unknown}; known: {list(EVENT_TYPES)}.")
        if not events:
            raise Invalid("Subscribe to at least one event type.")
    if secret is not None:
        try:
            secret_key(secret)
        except ValueError as exc:
            raise Invalid(f"secret: {exc}.") from None


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    workspace_id: int,
    *,
    url: str,
    events: Sequence[str],
    secret: str | None,
    description: str,
    enabled: bool,
) -> WebhookEndpoint:
    """A new endpoint; `secret` None: a fresh `whsec_` one (the caller shows it once)."""
    _check(settings, url, events, secret)
    endpoint = WebhookEndpoint(
        workspace_id=workspace_id,
        url=url,
        events=sorted(set(events)),
        secret=secret or new_secret(),
        description=description,
        enabled=enabled,
    )
    session.add(endpoint)
    await session.flush()
    _REGISTERED[0] += 1
    return endpoint


async def get_endpoint(
    session: AsyncSession, workspace_id: int, endpoint_id: int
) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.workspace_id != workspace_id:
        raise NotFound(f"Webhook endpoint {endpoint_id} not found.")
    return endpoint


def endpoints_statement(workspace_id: int) -> Select[WebhookEndpoint]:
    """The workspace's endpoints, by id (paginate it)."""
    return (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace_id)
        .order_by(WebhookEndpoint.id)
    )


async def update_endpoint(
    session: AsyncSession,
    settings: Settings,
    workspace_id: int,
    endpoint_id: int,
    changes: dict[str, Any],
) -> WebhookEndpoint:
    """Apply `changes` (url, events, secret, description, enabled: the fields sent)."""
    endpoint = await get_endpoint(session, workspace_id, endpoint_id)
    _check(settings, changes.get("url"), changes.get("events"), changes.get("secret"))
    for name, value in changes.items():
        if value is None and name in ("url", "events", "secret", "description", "enabled"):
            raise Invalid(f"{name} may not be null.")
        setattr(endpoint, name, sorted(set(value)) if name == "events" else value)
    endpoint.updated_at = utcnow()
    await session.flush()
    _REGISTERED[0] += 1
    return endpoint


async def delete_endpoint(session: AsyncSession, workspace_id: int, endpoint_id: int) -> None:
    endpoint = await get_endpoint(session, workspace_id, endpoint_id)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()


async def deliveries(
    session: AsyncSession, workspace_id: int, endpoint_id: int, *, limit: int, before: int | None
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first: `limit` rows with ids below `before`
    (an index range scan: the cost is the page's, not the log's)."""
    await get_endpoint(session, workspace_id, endpoint_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        statement = statement.where(WebhookDelivery.id < before)
    found = await session.scalars(statement.order_by(WebhookDelivery.id.desc()).limit(limit))
    return list(found.all())


# --- emission ------------------------------------------------------------------------------------


def event_body(event_type: str, data: dict[str, Any]) -> str:
    """The Standard Webhooks payload: `{"type", "timestamp", "data"}`."""
    payload = {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}
    return json.dumps(to_jsonable_python(payload), separators=(",", ":"))


@dataclass
class WebhookEvents:
    """Emits events to the workspace's subscribed endpoints. Never raises: an event that cannot
    be queued is logged, the workflow that emitted it is not affected."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    queue: JobQueue
    #: autocommit sessions for the lookup (one round trip when nothing listens)
    reads: async_sessionmaker[AsyncSession] | None = None
    #: what this process last saw (any endpoint enabled?), until when, and at which _REGISTERED
    _seen: tuple[bool, float, int] = field(default=(True, 0.0, -1), init=False)

    async def _none_enabled(self) -> bool:
        """True when no workspace has an enabled endpoint, as seen at most
        ANY_ENDPOINT_TTL_SECONDS ago (and no endpoint registered through this process since)."""
        any_enabled, until, registered = self._seen
        if time.monotonic() < until and registered == _REGISTERED[0]:
            return not any_enabled
        registered = _REGISTERED[0]
        async with (self.reads or self.sessionmaker)() as session:
            found = await session.scalar(
                select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True)).limit(1)
            )
        any_enabled = found is not None
        self._seen = (any_enabled, time.monotonic() + ANY_ENDPOINT_TTL_SECONDS, registered)
        return not any_enabled

    async def emit_for_chat(
        self, chat_id: int, event_type: str, event_id: str, data: dict[str, Any]
    ) -> None:
        """An event of the workspace that owns chat `chat_id` (no query while no endpoint is
        enabled anywhere; one when none of this workspace's listens)."""
        lookup = (
            select(WebhookEndpoint.id)
            .join(Chat, Chat.workspace_id == WebhookEndpoint.workspace_id)
            .where(Chat.id == chat_id, WebhookEndpoint.enabled.is_(True))
        )
        try:
            if await self._none_enabled():
                return
            async with (self.reads or self.sessionmaker)() as session:
                if not (await session.scalars(lookup.limit(1))).first():
                    return
            async with unit_of_work(self.sessionmaker) as session:
                endpoints = (
                    await session.scalars(
                        select(WebhookEndpoint).where(WebhookEndpoint.id.in_(lookup))
                    )
                ).all()
                await self._submit(session, endpoints, event_type, event_id, data)
        except Exception:
            logger.exception("event %s of chat %s could not be queued", event_type, chat_id)

    async def emit(
        self,
        session: AsyncSession,
        workspace_id: int,
        event_type: str,
        event_id: str,
        data: dict[str, Any],
    ) -> None:
        """An event of `workspace_id`, its jobs created in `session` (queued when it commits)."""
        endpoints = (
            await session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.workspace_id == workspace_id,
                    WebhookEndpoint.enabled.is_(True),
                )
            )
        ).all()
        await self._submit(session, endpoints, event_type, event_id, data)

    async def _submit(
        self,
        session: AsyncSession,
        endpoints: Sequence[WebhookEndpoint],
        event_type: str,
        event_id: str,
        data: dict[str, Any],
    ) -> None:
        listening = [e for e in endpoints if event_type in e.events]
        if not listening:
            return
        body = event_body(event_type, data)
        for endpoint in listening:
            msg_id = f"{event_id}-ep{endpoint.id}"
            await submit(
                session,
                self.queue,
                self.settings,
                endpoint.workspace_id,
                DELIVER_EVENT,
                {"endpoint_id": endpoint.id, "type": event_type, "msg_id": msg_id, "body": body},
                idempotency_key=msg_id,
            )
