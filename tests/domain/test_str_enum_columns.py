"""Status, kind and role columns typed with their StrEnums (kit.db.StrEnumType) on PostgreSQL and
SQLite: rows read back as members, string literals still compare, and a value that is not a member
fails loudly on write and on read instead of passing through."""

from __future__ import annotations

from typing import TypeVar

import pytest
from sqlalchemy import Select, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import ApiKey, Principal, PrincipalKind, Role
from chatsvc.chats.models import Chat, ExecutionStatus, Message, MessageStatus
from chatsvc.chats.models import Role as MessageRole
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.db import StrEnumType
from chatsvc.moderation import Action, Severity
from chatsvc.reports.models import Category, Reason, Report, Status
from chatsvc.reports.models import Severity as ReportSeverity
from chatsvc.tools.models import Tool, ToolKind

T = TypeVar("T")


async def _chat(session: AsyncSession) -> Chat:
    workspace = await auth_service.create_workspace(session, "typed")
    assistant = Assistant(
        workspace_id=workspace.id,
        description="Help desk",
        generation_config="offline",
        max_responses=10,
        max_msg_length=1000,
        max_consecutive_tool_calls=3,
    )
    session.add(assistant)
    await session.flush()
    chat = Chat(
        workspace_id=workspace.id, assistant_id=assistant.id, max_responses=10, max_msg_length=100
    )
    session.add(chat)
    await session.flush()
    return chat


async def test_the_schema_is_a_plain_varchar_of_the_given_length(session: AsyncSession) -> None:
    column = StrEnumType(MessageRole, 16)
    assert column.compile(dialect=session.get_bind().dialect) == "VARCHAR(16)"
    assert repr(column) == "StrEnumType(Role, 16)"
    # Statements with different enums never share a cached compilation.
    assert column._static_cache_key != StrEnumType(MessageStatus, 16)._static_cache_key


async def test_every_typed_column_reads_back_as_a_member(session: AsyncSession) -> None:
    chat = await _chat(session)
    message = Message(
        chat_id=chat.id,
        msg_num=1,
        role="user",  # a member's value is accepted on write and read back as the member
        status=MessageStatus.CANCELLED,
        severity=Severity.HIGH,
        action_taken=Action.FLAGGED,
    )
    session.add(message)
    key, _raw = await auth_service.create_api_key(
        session, chat.workspace_id, Role.MEMBER, username="max"
    )
    job, _created = await job_service.create_job(session, chat.workspace_id, "noop", {})
    session.add_all(
        [
            Report(
                workspace_id=chat.workspace_id,
                chat_id=chat.id,
                category=Category.INCORRECT,
                reason=Reason.SLOW,
                severity=ReportSeverity.LOW,
                status=Status.OPEN,
            ),
            Tool(workspace_id=chat.workspace_id, kind=ToolKind.SCRIPT, name="adder"),
        ]
    )
    await session.flush()
    session.expunge_all()  # every value below comes from the database

    message = await _one(session, select(Message).where(Message.id == message.id))
    assert message.role is MessageRole.USER
    assert message.status is MessageStatus.CANCELLED
    assert message.severity is Severity.HIGH
    assert message.action_taken is Action.FLAGGED
    assert (await _one(session, select(Chat))).execution_status is ExecutionStatus.AVAILABLE
    assert (await _one(session, select(Job).where(Job.id == job.id))).state is JobState.QUEUED
    report = await _one(session, select(Report))
    assert (report.category, report.reason, report.severity, report.status) == (
        Category.INCORRECT,
        Reason.SLOW,
        ReportSeverity.LOW,
        Status.OPEN,
    )
    assert isinstance(report.severity, ReportSeverity)
    assert (await _one(session, select(Tool))).kind is ToolKind.SCRIPT
    assert (await _one(session, select(ApiKey).where(ApiKey.id == key.id))).role is Role.MEMBER
    principal = await _one(session, select(Principal).where(Principal.username == "max"))
    assert principal.kind is PrincipalKind.USER
    # Column selects are typed too, and string literals still compare.
    role = await session.scalar(select(Message.role).where(Message.role == "user"))
    assert role is MessageRole.USER


async def test_a_value_that_is_not_a_member_is_refused_on_write(session: AsyncSession) -> None:
    chat = await _chat(session)
    session.add(Message(chat_id=chat.id, msg_num=1, role="bot"))
    with pytest.raises(StatementError) as caught:
        await session.flush()
    assert isinstance(caught.value.orig, ValueError)
    assert "'bot' is not a value of Role" in str(caught.value)
    await session.rollback()


async def test_a_stored_value_that_is_not_a_member_fails_loudly_on_read(
    session: AsyncSession,
) -> None:
    chat = await _chat(session)
    # Written behind the application's back (by hand, or by a newer version of it).
    await session.execute(
        text("UPDATE chats SET execution_status = 'PAUSED' WHERE id = :id"), {"id": chat.id}
    )
    with pytest.raises(ValueError, match="'PAUSED' is not a value of ExecutionStatus"):
        await session.scalar(select(Chat.execution_status).where(Chat.id == chat.id))
    with pytest.raises(ValueError, match="'PAUSED'"):
        await session.scalar(
            select(Chat).where(Chat.id == chat.id).execution_options(populate_existing=True)
        )


async def _one(session: AsyncSession, statement: Select[T]) -> T:
    found = await session.scalar(statement)
    assert found is not None
    return found
