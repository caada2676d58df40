"""Report rules: a report belongs to a chat of the caller's workspace, only what is sent changes,
and metrics list every enum value so their keys never change.

Who sees a report: it is seen by whoever may open its chat. An admin (`principal_id` None) sees
every report of the workspace; a member (`principal_id` its principal) sees only the reports on
the chats it owns, whoever wrote them, and may report only on those chats. Reports record no
author, so a member's report on a chat it does not own cannot exist. Every read follows the rule:
the list, the counts, one report by id, and the report an update or a delete looks up first. A
report the caller may not see is answered exactly like a missing one (NotFound), so its existence
does not leak. Changing and deleting reports is for admin keys only (the faces refuse members)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.chats.repository import ChatRepository, ChatScope
from chatsvc.chats.usage import UsageRepository
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import NotFound, or_not_found
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.reports.models import Report
from chatsvc.reports.repository import ReportRepository
from chatsvc.reports.schemas import DIMENSIONS, ReportFilters, ReportIn, ReportMetrics


async def list_reports(
    session: AsyncSession,
    workspace_id: int,
    filters: ReportFilters,
    params: PageParams,
    *,
    principal_id: int | None = None,
) -> Page[Report]:
    """One page of the matching reports the caller sees (with `principal_id`, a member: only
    those on its own chats)."""
    scope = ChatScope(workspace_id, principal_id)
    return await ReportRepository(session).list(scope, filters, params)


async def report_metrics(
    session: AsyncSession,
    workspace_id: int,
    filters: ReportFilters,
    *,
    principal_id: int | None = None,
) -> ReportMetrics:
    """Counts of the matching reports the caller sees by status, category, reason and severity.
    No match is not an error: every count is then zero."""
    scope = ChatScope(workspace_id, principal_id)
    reports = ReportRepository(session)
    found = await reports.counts(scope, filters)
    usage = await UsageRepository(session).of_chats(reports.chat_ids(scope, filters))
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
        token_usage=usage.as_dict(),
    )


async def get_report(
    session: AsyncSession, workspace_id: int, report_id: int, *, principal_id: int | None = None
) -> Report:
    """The report, if the caller sees it (see the module); otherwise NotFound, as if missing."""
    scope = ChatScope(workspace_id, principal_id)
    report = await ReportRepository(session).get(scope, report_id)
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
    session: AsyncSession,
    workspace_id: int,
    report_id: int,
    values: dict[str, Any],
    *,
    principal_id: int | None = None,
) -> Report:
    """Apply `values` (all fields for a replace, the sent ones for a partial update) to a report
    the caller sees; a new chat must be one it sees too."""
    repository = ReportRepository(session)
    report = await get_report(session, workspace_id, report_id, principal_id=principal_id)
    columns = _columns(values)
    if "chat_id" in columns:
        await _ensure_chat(session, ChatScope(workspace_id, principal_id), columns["chat_id"])
    columns["updated_at"] = utcnow()
    return await repository.update(report, columns)


async def delete_report(
    session: AsyncSession, workspace_id: int, report_id: int, *, principal_id: int | None = None
) -> None:
    """Permanent: the report (one the caller sees) is removed, not marked."""
    report = await get_report(session, workspace_id, report_id, principal_id=principal_id)
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
