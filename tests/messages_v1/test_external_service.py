"""The rules behind messages-v1 (chatsvc.chats.external) on PostgreSQL and SQLite: posting once
per externalId, which posts are turns, senders, sub-threads and ticket references, and the period
export's job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Principal, PrincipalKind, Role
from chatsvc.auth.service import AuthContext
from chatsvc.chats import external
from chatsvc.chats import service as chat_service
from chatsvc.chats.external import NewMessage
from chatsvc.chats.jobs import enqueue_answer
from chatsvc.chats.models import Chat, ChatTicket, ExecutionStatus, Message
from chatsvc.chats.models import Role as MessageRole
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.config import Settings
from chatsvc.jobs.models import Job
from chatsvc.jobs.queue import InProcessQueue
from chatsvc.kit.errors import Conflict, Forbidden, Invalid, NotFound
from chatsvc.kit.pagination import PageParams
from chatsvc.threads.models import ChatSession
from chatsvc.threads.repository import SessionRepository
from tests.fixtures.app import make_settings

PAGE = PageParams(page=1, page_size=50)


async def _never(job_id: int) -> None:
    raise AssertionError(f"job {job_id} triggered: nothing commits in these tests")


@dataclass
class World:
    session: AsyncSession
    admin: AuthContext
    member: AuthContext
    admin_uuid: str
    member_uuid: str
    chat: Chat
    settings: Settings
    queue: InProcessQueue

    def new(self, **fields: object) -> NewMessage:
        values: dict[str, object] = {
            "chat_id": self.chat.uuid,
            "thread_id": None,
            "content": "hello",
            "external_id": None,
            "sender_id": self.admin_uuid,
            "role": MessageRole.ASSISTANT,
            **fields,
        }
        return NewMessage(**values)  # type: ignore[arg-type]

    async def post(self, auth: AuthContext | None = None, **fields: object) -> external.Posted:
        return await external.post_message(
            self.session,
            auth or self.admin,
            self.new(**fields),
            settings=self.settings,
        )

    async def count(self, statement: object) -> int:
        return int(await self.session.scalar(statement) or 0)  # type: ignore[call-overload]


async def _auth(session: AsyncSession, workspace_id: int, role: Role, user: str) -> AuthContext:
    _key, raw = await auth_service.create_api_key(session, workspace_id, role, username=user)
    found = await auth_service.authenticate(session, raw)
    assert found is not None
    return found


@pytest.fixture
async def world(session: AsyncSession, sqlite_url: str) -> AsyncIterator[World]:
    workspace = await auth_service.create_workspace(session, f"ext-{uuid.uuid4().hex[:8]}")
    admin = await _auth(session, workspace.id, Role.ADMIN, "ada")
    member = await _auth(session, workspace.id, Role.MEMBER, "max")
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
    chat, _turn = await chat_service.create_chat(
        session,
        admin,
        assistant.id,
        OptionalUserMessageIn(),
        idempotency_key=None,
        lease_seconds=60,
    )

    async def uuid_of(principal_id: int) -> str:
        return (await SessionRepository(session).ensure(workspace.id, principal_id)).user_uuid

    queue = InProcessQueue(_never)
    yield World(
        session,
        admin,
        member,
        await uuid_of(admin.principal_id),
        await uuid_of(member.principal_id),
        chat,
        make_settings(sqlite_url),
        queue,
    )
    await queue.close()


async def test_an_external_id_is_stored_once_per_chat(world: World) -> None:
    first = await world.post(external_id="crm-1", content="first")
    again = await world.post(external_id="crm-1", content="other text")
    assert first.created and not again.created
    assert again.message.id == first.message.id and again.message.content == "first"
    assert again.sender is not None and again.sender.uuid == world.admin_uuid
    stored = await world.count(select(func.count(Message.id)).where(Message.external_id == "crm-1"))
    assert stored == 1


async def test_a_main_thread_user_message_is_a_turn_with_an_answer_job(world: World) -> None:
    posted = await world.post(role=MessageRole.USER, content="Where is my parcel?")
    assert posted.turn is not None and posted.turn.user_msg_num == posted.message.msg_num
    # The turn service queues the answer of a posted turn in the same transaction.
    job_id = await enqueue_answer(
        world.session, world.queue, world.settings, world.admin, posted.turn
    )
    assert job_id is not None
    job = await world.session.get(Job, job_id)
    assert job is not None and job.kind == "chat_generation"
    assert job.payload["user_msg_num"] == posted.message.msg_num
    await world.session.refresh(world.chat)
    assert world.chat.execution_status == ExecutionStatus.PROCESSING
    with pytest.raises(Conflict):
        await world.post(role=MessageRole.USER, content="Hello?")
    side = await world.post(role=MessageRole.USER, thread_id=str(uuid.uuid4()))
    assistant = await world.post(role=MessageRole.ASSISTANT)
    assert side.turn is None and assistant.turn is None
    jobs = await world.count(select(func.count(Job.id)).where(Job.kind == "chat_generation"))
    assert jobs == 1


async def test_posted_fields_are_stored_on_the_message(world: World) -> None:
    thread, ticket = str(uuid.uuid4()), str(uuid.uuid4())
    posted = await world.post(
        thread_id=thread, external_id="ext-7", content="note", ticket_ids=(ticket, ticket)
    )
    message = posted.message
    assert (message.thread_key, message.external_id, message.content) == (thread, "ext-7", "note")
    assert message.sender_id == world.admin.principal_id
    assert external.raw_content(message) is None
    assert await external.ticket_ids_of(world.session, world.chat.id) == [ticket]


async def test_threads_and_tickets_filter_the_listing(world: World) -> None:
    red, ticket = str(uuid.uuid4()), str(uuid.uuid4())
    await world.post(content="a", thread_id=red, ticket_ids=(ticket,))
    await world.post(content="b")
    await world.post(content="c", thread_id=red, ticket_ids=(ticket,))  # a repeat is a no-op

    async def contents(**filters: object) -> list[str]:
        found = await external.list_messages(
            world.session,
            world.admin,
            world.chat.uuid,
            thread_id=filters.get("thread_id"),  # type: ignore[arg-type]
            ticket_ids=filters.get("ticket_ids", ()),  # type: ignore[arg-type]
            params=PAGE,
        )
        assert found.page.total == len(found.page.items)
        return [m.content for m in found.page.items]

    assert await contents() == ["a", "b", "c"]
    assert await contents(thread_id=red) == ["a", "c"]
    assert await contents(ticket_ids=[str(uuid.uuid4()), ticket]) == ["a", "b", "c"]
    assert await contents(ticket_ids=[str(uuid.uuid4())]) == []
    tickets = await world.count(select(func.count()).select_from(ChatTicket))
    assert tickets == 1
    with pytest.raises(NotFound):
        await external.list_messages(
            world.session,
            world.admin,
            str(uuid.uuid4()),
            thread_id=None,
            ticket_ids=(),
            params=PAGE,
        )


async def test_senders_members_post_as_themselves_admins_register_identities(
    world: World,
) -> None:
    # The admin's chat is not the member's: the member gets a chat of its own.
    assistant_id = world.chat.assistant_id
    own, _turn = await chat_service.create_chat(
        world.session,
        world.member,
        assistant_id,
        OptionalUserMessageIn(),
        idempotency_key=None,
        lease_seconds=60,
    )
    with pytest.raises(NotFound):
        await world.post(world.member, sender_id=world.member_uuid)
    mine = await world.post(world.member, chat_id=own.uuid, sender_id=world.member_uuid)
    assert mine.message.sender_id == world.member.principal_id
    with pytest.raises(Forbidden):
        await world.post(world.member, chat_id=own.uuid, sender_id=world.admin_uuid)

    customer = str(uuid.uuid4())
    for _ in range(2):
        posted = await world.post(sender_id=customer)
        assert posted.sender is not None and posted.sender.uuid == customer
    registered = await world.session.scalars(
        select(Principal)
        .join(ChatSession, ChatSession.principal_id == Principal.id)
        .where(ChatSession.user_uuid == customer)
    )
    (principal,) = registered.all()
    assert principal.kind == PrincipalKind.EXTERNAL
    assert principal.workspace_id == world.admin.workspace_id


async def test_only_user_and_assistant_messages_are_posted(world: World) -> None:
    for role in (MessageRole.SYSTEM, MessageRole.TOOL):
        with pytest.raises(Invalid):
            await world.post(role=role)


async def test_the_period_export_is_one_job_with_utc_bounds(world: World) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime.fromisoformat("2026-11-02T01:00:00+01:00")
    started = await external.request_period_export(
        world.session,
        world.queue,
        world.settings,
        world.admin,
        start=start,
        end=end,
        language="ptBr",
        callback_url="https://93.184.215.14/export",
        idempotency_key=None,
    )
    assert started.created and started.callback == "https://93.184.215.14:443"
    filters = started.job.payload["filters"]
    assert filters["start"] == "2026-11-01T00:00:00+00:00"
    assert filters["end"] == "2026-11-02T00:00:00+00:00"
    assert filters["language"] == "ptBr"
    with pytest.raises(Forbidden):
        await external.request_period_export(
            world.session,
            world.queue,
            world.settings,
            world.member,
            start=start,
            end=None,
            language="enUs",
            callback_url="https://93.184.215.14/export",
            idempotency_key=None,
        )
