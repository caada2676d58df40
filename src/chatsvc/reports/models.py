"""Structured feedback on a chat, judged along four enums."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, StrEnumType, TimestampMixin


class ReportCategory(StrEnum):
    """How the answer was judged: CORRECT, INCORRECT, INCOMPLETE, IRRELEVANT, INAPPROPRIATE or
    OTHER."""

    CORRECT = "CORRECT"
    INCORRECT = "INCORRECT"
    INCOMPLETE = "INCOMPLETE"
    IRRELEVANT = "IRRELEVANT"
    INAPPROPRIATE = "INAPPROPRIATE"
    OTHER = "OTHER"


class ReportReason(StrEnum):
    """Why: NOT_IN_DOCS (the knowledge lacks it), WRONG_INFO, OUTDATED_INFO, MISUNDERSTOOD (the
    question), HALLUCINATION, TOOL_ERROR, SLOW or OTHER."""

    NOT_IN_DOCS = "NOT_IN_DOCS"
    WRONG_INFO = "WRONG_INFO"
    OUTDATED_INFO = "OUTDATED_INFO"
    MISUNDERSTOOD = "MISUNDERSTOOD"
    HALLUCINATION = "HALLUCINATION"
    TOOL_ERROR = "TOOL_ERROR"
    SLOW = "SLOW"
    OTHER = "OTHER"


class ReportSeverity(StrEnum):
    """How much it matters, from least to most: INFO, LOW, MEDIUM, HIGH, CRITICAL."""

    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class ReportStatus(StrEnum):
    """Where the report stands: NO_ISSUES (nothing to fix), OPEN, IN_REVIEW, RESOLVED or
    DISMISSED."""

    NO_ISSUES = "NO_ISSUES"
    OPEN = "OPEN"
    IN_REVIEW = "IN_REVIEW"
    RESOLVED = "RESOLVED"
    DISMISSED = "DISMISSED"


# The names the reports code uses; the classes are named for the OpenAPI document, where a bare
# "Status" or "Severity" would not say whose (moderation has a severity too).
Category = ReportCategory
Reason = ReportReason
Severity = ReportSeverity
Status = ReportStatus


class Report(TimestampMixin, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_workspace_id_created_at", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    category: Mapped[Category] = mapped_column(StrEnumType(Category, 32))
    reason: Mapped[Reason] = mapped_column(StrEnumType(Reason, 32))
    severity: Mapped[Severity] = mapped_column(StrEnumType(Severity, 32))
    status: Mapped[Status] = mapped_column(StrEnumType(Status, 32))
    topic: Mapped[str] = mapped_column(String(255), default="")
    comments: Mapped[str] = mapped_column(Text, default="")
