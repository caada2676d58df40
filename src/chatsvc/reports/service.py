"""Report rules: a report belongs to a chat of the caller's workspace, only what is sent changes,
and metrics list every enum value so their keys never change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.chats.repository import ChatRepository, ChatScope
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import NotFound, or_not_found
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.reports.models import Report
from chatsvc.reports.repository import ReportRepository
from chatsvc.reports.schemas import DIMENSIONS, ReportFilters, ReportIn, ReportMetrics


async def list_reports(
    session: AsyncSession, workspace_id: int, filters: ReportFilters, params: PageParams
) -> Page[Report]:
    return await ReportRepository(session).list(workspace_id, filters, params)


async def report_metrics(
    session: AsyncSession, workspace_id: int, filters: ReportFilters
) -> ReportMetrics:
    """Counts of the matching reports by status, category, reason and severity. No match is not
    an error: every count is then zero."""
    found = await ReportRepository(session).counts(workspace_id, filters)
    counts = {
        name: {member.value: 0 for member in enum} | found[name]
        for name, enum in DIMENSIONS.items()
    }
    return ReportMetrics(
        total_reports=sum(found["status"].values()),
        status_counts=counts["status"],
        category_counts=counts["category"],
        reason_counts=counts["reason"],
        severity_counts=counts["severity"],
    )


async def get_report(session: AsyncSession, workspace_id: int, report_id: int) -> Report:
    report = await ReportRepository(session).get(workspace_id, report_id)
    return or_not_found(report, f"Report {report_id} not found.")


async def create_report(
    session: AsyncSession, workspace_id: int, data: ReportIn, *, principal_id: int | None = None
) -> Report:
    """A report on a chat the caller sees: with `principal_id` (a member), only its own chats."""
    values = _columns(data.model_dump())
    repository = ReportRepository(session)
    await _ensure_chat(session, ChatScope(workspace_id, principal_id), values["chat_id"])
    return await repository.add(Report(workspace_id=workspace_id, **values))


async def update_report(
    session: AsyncSession, workspace_id: int, report_id: int, values: dict[str, Any]
) -> Report:
    """Apply `values` (all fields for a replace, the sent ones for a partial update)."""
    repository = ReportRepository(session)
    report = await get_report(session, workspace_id, report_id)
    columns = _columns(values)
    if "chat_id" in columns:
        await _ensure_chat(session, ChatScope(workspace_id, None), columns["chat_id"])
    columns["updated_at"] = utcnow()
    return await repository.update(report, columns)


async def delete_report(session: AsyncSession, workspace_id: int, report_id: int) -> None:
    """Permanent: the report is removed, not marked."""
    report = await get_report(session, workspace_id, report_id)
    await ReportRepository(session).delete(report)


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Input field names to column names: `chat` is stored as chat_id; enums as their text."""
    columns = {key: getattr(value, "value", value) for key, value in values.items()}
    if "chat" in columns:
        columns["chat_id"] = columns.pop("chat")
    return columns


async def _ensure_chat(session: AsyncSession, scope: ChatScope, chat_id: int) -> None:
    # A chat the caller cannot see is reported exactly like a missing one: its existence is not
    # ours to reveal.
    if await ChatRepository(session).get(scope, chat_id) is None:
        raise NotFound(f"Chat {chat_id} not found.", code="chat_not_found")
