"""The report service on PostgreSQL and SQLite: reports live on a chat of the caller's workspace,
replace and partial updates, permanent deletion, filters over whole UTC days and metrics grouped in
the database with every enum value as a key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth.models import Role
from chatsvc.auth.service import create_api_key, create_workspace
from chatsvc.chats.models import Chat
from chatsvc.config import Settings
from chatsvc.kit.errors import Invalid, NotFound
from chatsvc.kit.pagination import PageParams
from chatsvc.reports import service as report_service
from chatsvc.reports.models import Report
from chatsvc.reports.schemas import (
    Category,
    Reason,
    ReportFilters,
    ReportIn,
    ReportPatch,
    Severity,
    Status,
    parse_day,
)

ALL = PageParams(page=1, page_size=100)
NO_FILTER = ReportFilters()


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    return (await create_workspace(session, "ws")).id


async def new_assistant(session: AsyncSession, workspace_id: int, settings: Settings) -> int:
    data = AssistantIn(description="Help desk")
    return (await assistant_service.create_assistant(session, workspace_id, data, settings)).id


async def new_chat(session: AsyncSession, workspace_id: int, assistant_id: int) -> int:
    chat = Chat(
        workspace_id=workspace_id, assistant_id=assistant_id, max_responses=10, max_msg_length=100
    )
    session.add(chat)
    await session.flush()
    return chat.id


@pytest.fixture
async def chat_id(session: AsyncSession, workspace_id: int, settings: Settings) -> int:
    return await new_chat(
        session, workspace_id, await new_assistant(session, workspace_id, settings)
    )


def data(chat: int, **overrides: Any) -> ReportIn:
    values: dict[str, Any] = {
        "category": "INCORRECT",
        "reason": "WRONG_INFO",
        "severity": "HIGH",
        "status": "OPEN",
        "topic": "billing",
        "comments": "The refund window is 30 days, not 14.",
        "chat": chat,
        **overrides,
    }
    return ReportIn.model_validate(values)


async def create(session: AsyncSession, workspace_id: int, chat: int, **overrides: Any) -> Report:
    return await report_service.create_report(session, workspace_id, data(chat, **overrides))


async def reread(session: AsyncSession, workspace_id: int, report_id: int) -> Report:
    """The report as stored: read back from the database, not from the identity map."""
    session.expunge_all()
    return await report_service.get_report(session, workspace_id, report_id)


async def stored_count(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(Report))) or 0


async def created_at(session: AsyncSession, report_id: int, moment: datetime) -> None:
    await session.execute(update(Report).where(Report.id == report_id).values(created_at=moment))


def fields(report: Report) -> dict[str, Any]:
    names = ("category", "reason", "severity", "status", "topic", "comments", "chat_id")
    return {name: getattr(report, name) for name in names}


# --- create, read, update, delete ----------------------------------------------------------------


async def test_create_stores_every_field(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    created = await create(session, workspace_id, chat_id)

    stored = await reread(session, workspace_id, created.id)
    assert stored.workspace_id == workspace_id
    assert fields(stored) == {
        "category": "INCORRECT",
        "reason": "WRONG_INFO",
        "severity": "HIGH",
        "status": "OPEN",
        "topic": "billing",
        "comments": "The refund window is 30 days, not 14.",
        "chat_id": chat_id,
    }
    assert stored.created_at.tzinfo is not None
    assert stored.updated_at >= stored.created_at


async def test_topic_and_comments_default_to_empty_text(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    body = {"category": "CORRECT", "reason": "NOT_IN_DOCS", "severity": "INFO"}
    minimal = ReportIn.model_validate({**body, "status": "NO_ISSUES", "chat": chat_id})
    created = await report_service.create_report(session, workspace_id, minimal)

    stored = await reread(session, workspace_id, created.id)
    assert (stored.topic, stored.comments) == ("", "")


async def test_chat_must_be_in_the_workspace(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    stranger = (await create_workspace(session, "stranger")).id
    foreign_chat = await new_chat(
        session, stranger, await new_assistant(session, stranger, settings)
    )

    for chat in (foreign_chat, 987_654_321):
        with pytest.raises(NotFound, match=f"Chat {chat} not found"):
            await create(session, workspace_id, chat)
    assert await stored_count(session) == 0


async def test_another_workspaces_report_is_not_found(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    created = await create(session, workspace_id, chat_id)
    stranger = (await create_workspace(session, "stranger")).id

    with pytest.raises(NotFound, match=f"Report {created.id} not found"):
        await report_service.get_report(session, stranger, created.id)
    with pytest.raises(NotFound):
        await report_service.update_report(session, stranger, created.id, {"status": "RESOLVED"})
    with pytest.raises(NotFound):
        await report_service.delete_report(session, stranger, created.id)
    assert (await reread(session, workspace_id, created.id)).status == "OPEN"


async def test_a_member_sees_reports_only_on_its_own_chats(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    """A member's principal bounds every read, counts and lookups before a change included; a
    report it may not see is NotFound, as a missing one is."""
    a = (await create_api_key(session, workspace_id, Role.MEMBER, username="a"))[0].principal_id
    b = (await create_api_key(session, workspace_id, Role.MEMBER, username="b"))[0].principal_id
    assistant = await new_assistant(session, workspace_id, settings)
    a_chat = await new_chat(session, workspace_id, assistant)
    b_chat = await new_chat(session, workspace_id, assistant)
    await session.execute(update(Chat).where(Chat.id == a_chat).values(principal_id=a))
    await session.execute(update(Chat).where(Chat.id == b_chat).values(principal_id=b))
    a_report = await report_service.create_report(
        session, workspace_id, data(a_chat), principal_id=a
    )
    b_report = await report_service.create_report(
        session, workspace_id, data(b_chat), principal_id=b
    )
    await create(session, workspace_id, chat_id)  # on a chat no member owns

    async def seen(principal: int | None) -> list[int]:
        page = await report_service.list_reports(
            session, workspace_id, NO_FILTER, ALL, principal_id=principal
        )
        metrics = await report_service.report_metrics(
            session, workspace_id, NO_FILTER, principal_id=principal
        )
        assert metrics.total_reports == page.total == len(page.items)
        return sorted(report.id for report in page.items)

    assert await seen(a) == [a_report.id]
    assert await seen(b) == [b_report.id]
    assert len(await seen(None)) == 3

    assert (await report_service.get_report(session, workspace_id, a_report.id, principal_id=a)).id
    with pytest.raises(NotFound, match=f"Report {a_report.id} not found"):
        await report_service.get_report(session, workspace_id, a_report.id, principal_id=b)
    with pytest.raises(NotFound):
        await report_service.update_report(
            session, workspace_id, a_report.id, {"status": "RESOLVED"}, principal_id=b
        )
    with pytest.raises(NotFound):
        await report_service.delete_report(session, workspace_id, a_report.id, principal_id=b)
    with pytest.raises(NotFound, match=f"Chat {a_chat} not found"):
        await report_service.update_report(
            session, workspace_id, b_report.id, {"chat": a_chat}, principal_id=b
        )
    assert (await reread(session, workspace_id, a_report.id)).status == "OPEN"
    assert (await reread(session, workspace_id, b_report.id)).chat_id == b_chat


async def test_replace_sets_every_field(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, chat_id)
    before = created.updated_at
    second_chat = await new_chat(
        session, workspace_id, await new_assistant(session, workspace_id, settings)
    )
    replacement = ReportIn.model_validate(
        {
            "category": "CORRECT",
            "reason": "NOT_IN_DOCS",
            "severity": "INFO",
            "status": "NO_ISSUES",
            "chat": second_chat,
        }
    )

    await report_service.update_report(session, workspace_id, created.id, replacement.model_dump())

    stored = await reread(session, workspace_id, created.id)
    assert fields(stored) == {
        "category": "CORRECT",
        "reason": "NOT_IN_DOCS",
        "severity": "INFO",
        "status": "NO_ISSUES",
        "topic": "",
        "comments": "",
        "chat_id": second_chat,
    }
    assert stored.updated_at >= before


async def test_partial_update_changes_only_the_given_fields(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    created = await create(session, workspace_id, chat_id)
    patch = ReportPatch.model_validate({"status": "RESOLVED", "comments": "Fixed the FAQ."})

    await report_service.update_report(session, workspace_id, created.id, patch.changes())

    stored = await reread(session, workspace_id, created.id)
    assert fields(stored) == {
        "category": "INCORRECT",
        "reason": "WRONG_INFO",
        "severity": "HIGH",
        "status": "RESOLVED",
        "topic": "billing",
        "comments": "Fixed the FAQ.",
        "chat_id": chat_id,
    }


async def test_moving_a_report_to_a_foreign_chat_changes_nothing(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, chat_id)
    stranger = (await create_workspace(session, "stranger")).id
    foreign_chat = await new_chat(
        session, stranger, await new_assistant(session, stranger, settings)
    )

    with pytest.raises(NotFound, match=f"Chat {foreign_chat} not found"):
        await report_service.update_report(
            session, workspace_id, created.id, {"chat": foreign_chat, "status": "RESOLVED"}
        )

    stored = await reread(session, workspace_id, created.id)
    assert (stored.chat_id, stored.status) == (chat_id, "OPEN")


async def test_delete_is_permanent(session: AsyncSession, workspace_id: int, chat_id: int) -> None:
    kept = await create(session, workspace_id, chat_id)
    gone = await create(session, workspace_id, chat_id)

    await report_service.delete_report(session, workspace_id, gone.id)

    with pytest.raises(NotFound):
        await reread(session, workspace_id, gone.id)
    assert await stored_count(session) == 1
    assert (await reread(session, workspace_id, kept.id)).id == kept.id


# --- list and metrics ----------------------------------------------------------------------------


async def test_list_pages_in_id_order_within_the_workspace(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    ids = [(await create(session, workspace_id, chat_id)).id for _ in range(5)]
    stranger = (await create_workspace(session, "stranger")).id
    await create(
        session,
        stranger,
        await new_chat(session, stranger, await new_assistant(session, stranger, settings)),
    )

    first = await report_service.list_reports(
        session, workspace_id, NO_FILTER, PageParams(page=1, page_size=2)
    )
    last = await report_service.list_reports(
        session, workspace_id, NO_FILTER, PageParams(page=3, page_size=2)
    )

    assert [r.id for r in first.items] == ids[:2]
    assert (first.total, first.has_next, first.has_previous) == (5, True, False)
    assert [r.id for r in last.items] == ids[4:]
    assert (last.has_next, last.has_previous) == (False, True)


async def test_metrics_of_no_reports_list_every_value_at_zero(
    session: AsyncSession, workspace_id: int
) -> None:
    metrics = await report_service.report_metrics(session, workspace_id, NO_FILTER)

    assert metrics.total_reports == 0
    assert metrics.status_counts == dict.fromkeys([s.value for s in Status], 0)
    assert metrics.category_counts == dict.fromkeys([c.value for c in Category], 0)
    assert metrics.reason_counts == dict.fromkeys([r.value for r in Reason], 0)
    assert metrics.severity_counts == dict.fromkeys([s.value for s in Severity], 0)


async def test_metrics_count_each_dimension(
    session: AsyncSession, workspace_id: int, chat_id: int, settings: Settings
) -> None:
    await create(session, workspace_id, chat_id)
    await create(session, workspace_id, chat_id, status="RESOLVED")
    await create(
        session,
        workspace_id,
        chat_id,
        category="CORRECT",
        reason="NOT_IN_DOCS",
        severity="INFO",
        status="NO_ISSUES",
    )
    stranger = (await create_workspace(session, "stranger")).id
    stranger_chat = await new_chat(
        session, stranger, await new_assistant(session, stranger, settings)
    )
    await create(session, stranger, stranger_chat, status="DISMISSED")

    metrics = await report_service.report_metrics(session, workspace_id, NO_FILTER)

    assert metrics.total_reports == 3
    assert metrics.status_counts == {
        "NO_ISSUES": 1,
        "OPEN": 1,
        "IN_REVIEW": 0,
        "RESOLVED": 1,
        "DISMISSED": 0,
    }
    assert metrics.category_counts["INCORRECT"] == 2
    assert metrics.category_counts["CORRECT"] == 1
    assert sum(metrics.category_counts.values()) == 3
    assert metrics.reason_counts["WRONG_INFO"] == 2
    assert metrics.reason_counts["NOT_IN_DOCS"] == 1
    assert metrics.severity_counts == {"INFO": 1, "LOW": 0, "MEDIUM": 0, "HIGH": 2, "CRITICAL": 0}


async def test_topic_and_assistant_filters(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    helper = await new_assistant(session, workspace_id, settings)
    other = await new_assistant(session, workspace_id, settings)
    helper_chats = [await new_chat(session, workspace_id, helper) for _ in range(2)]
    other_chat = await new_chat(session, workspace_id, other)
    a = await create(session, workspace_id, helper_chats[0], topic="billing")
    b = await create(session, workspace_id, helper_chats[1], topic="shipping")
    c = await create(session, workspace_id, other_chat, topic="billing")

    async def ids(filters: ReportFilters) -> list[int]:
        page = await report_service.list_reports(session, workspace_id, filters, ALL)
        metrics = await report_service.report_metrics(session, workspace_id, filters)
        assert metrics.total_reports == page.total
        return [r.id for r in page.items]

    assert await ids(ReportFilters(topic="billing")) == [a.id, c.id]
    assert await ids(ReportFilters(topic="Billing")) == []
    assert await ids(ReportFilters(assistant_id=helper)) == [a.id, b.id]
    assert await ids(ReportFilters(assistant_id=other, topic="billing")) == [c.id]
    assert await ids(ReportFilters(assistant_id=987_654_321)) == []


async def test_date_filters_include_both_whole_days_in_utc(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    moments = {
        "before": datetime(2025, 4, 30, 23, 59, 59, 999_999, tzinfo=UTC),
        "first": datetime(2025, 5, 1, 0, 0, tzinfo=UTC),
        "middle": datetime(2025, 5, 15, 12, 0, tzinfo=UTC),
        "last": datetime(2025, 5, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        "after": datetime(2025, 6, 1, 0, 0, tzinfo=UTC),
    }
    names: dict[int, str] = {}
    for name, moment in moments.items():
        report = await create(session, workspace_id, chat_id, topic=name)
        await created_at(session, report.id, moment)
        names[report.id] = name
    session.expunge_all()

    async def found(filters: ReportFilters) -> list[str]:
        page = await report_service.list_reports(session, workspace_id, filters, ALL)
        metrics = await report_service.report_metrics(session, workspace_id, filters)
        assert metrics.total_reports == page.total
        return [names[r.id] for r in page.items]

    may = ReportFilters(start_date=date(2025, 5, 1), end_date=date(2025, 5, 31))
    assert await found(may) == ["first", "middle", "last"]
    assert await found(ReportFilters(start_date=date(2025, 5, 31))) == ["last", "after"]
    assert await found(ReportFilters(end_date=date(2025, 5, 1))) == ["before", "first"]
    one_day = ReportFilters(start_date=date(2025, 5, 15), end_date=date(2025, 5, 15))
    assert await found(one_day) == ["middle"]
    assert await found(ReportFilters(end_date=date.max)) == list(moments)
    assert await found(ReportFilters(start_date=date.min)) == list(moments)


# --- filter input --------------------------------------------------------------------------------


def test_start_after_end_is_invalid() -> None:
    with pytest.raises(
        Invalid, match=r"start_date \(2025-05-02\) is after end_date \(2025-05-01\)"
    ) as raised:
        ReportFilters(start_date=date(2025, 5, 2), end_date=date(2025, 5, 1))
    assert raised.value.code == "invalid_date_range"
    with pytest.raises(Invalid, match="start_date"):
        ReportFilters.from_query(start_date="2025-05-02", end_date="2025-05-01")


@pytest.mark.parametrize(
    "value", ["2025-13-01", "2025-02-30", "2025-5-1", "20250501", "yesterday", "2025-05-01T00:00"]
)
@pytest.mark.parametrize("name", ["start_date", "end_date"])
def test_malformed_days_are_invalid_naming_the_parameter(name: str, value: str) -> None:
    days = {"start_date": None, "end_date": None, name: value}
    with pytest.raises(Invalid, match=f"^{name} must be a date as YYYY-MM-DD") as raised:
        ReportFilters.from_query(start_date=days["start_date"], end_date=days["end_date"])
    assert value in raised.value.message


def test_query_text_becomes_filters() -> None:
    assert ReportFilters.from_query() == NO_FILTER
    assert ReportFilters.from_query(topic="", start_date="", end_date="") == NO_FILTER
    assert ReportFilters.from_query(
        topic="billing", assistant=3, start_date="2025-05-01", end_date="2025-05-01"
    ) == ReportFilters("billing", 3, date(2025, 5, 1), date(2025, 5, 1))
    assert parse_day("start_date", "2024-02-29") == date(2024, 2, 29)
    with pytest.raises(Invalid, match="NUL"):
        ReportFilters.from_query(topic="bad\x00topic")


def test_a_patch_refuses_null() -> None:
    with pytest.raises(ValueError, match="status may not be null"):
        ReportPatch.model_validate({"status": None})
    assert ReportPatch.model_validate({"topic": ""}).changes() == {"topic": ""}


async def test_timestamps_advance_on_update(
    session: AsyncSession, workspace_id: int, chat_id: int
) -> None:
    created = await create(session, workspace_id, chat_id)
    await created_at(session, created.id, created.created_at - timedelta(days=1))
    session.expunge_all()

    updated = await report_service.update_report(
        session, workspace_id, created.id, {"severity": "CRITICAL"}
    )

    assert updated.severity == "CRITICAL"
    assert updated.updated_at > updated.created_at
