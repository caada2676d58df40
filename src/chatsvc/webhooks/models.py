"""Event webhooks: the endpoints a workspace registers (URL, events, signing secret) and the
log of their deliveries (one row per delivery job run: its outcome, status and error)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, JSONType, TimestampMixin, utcnow

#: the events an endpoint may subscribe to
EVENT_TYPES = ("chat.completed", "chat.failed", "export.completed", "export.failed")


class WebhookEndpoint(TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    #: the subscribed event types (a JSON list of EVENT_TYPES members)
    events: Mapped[list[str]] = mapped_column(JSONType)
    #: "whsec_<base64>": the HMAC key of the Standard Webhooks signature
    secret: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The delivery log's query: an endpoint's latest rows, newest first, by id.
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    #: the webhook-id sent (one per event and endpoint, the same on every retry)
    msg_id: Mapped[str] = mapped_column(String(255))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
