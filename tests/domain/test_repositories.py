"""Repository queries that moved out of the services (auth, chats' tickets, senders and settings,
exports, assistants' summary) on PostgreSQL and SQLite: what each finds, what it leaves out, and
the writes that must stay idempotent under a repeat or a race."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant
from chatsvc.assistants.repository import AssistantRepository
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Principal, PrincipalKind, Role, Workspace
from chatsvc.auth.repository import ApiKeyRepository, PrincipalRepository, WorkspaceRepository
from chatsvc.chats.models import Chat, ChatSettings, Message, MessageStatus
from chatsvc.chats.models import Role as MessageRole
from chatsvc.chats.repository import (
    ChatRepository,
    ChatScope,
    ChatSettingsRepository,
    MessageRepository,
    SenderRepository,
    TicketRepository,
)
from chatsvc.exports.repository import ExportRepository
from chatsvc.exports.schemas import ExportFilters
from chatsvc.kit.db import utcnow
from chatsvc.kit.pagination import PageParams
from chatsvc.threads.repository import SessionRepository

PAGE = PageParams(page=1, page_size=50)


async def _workspace(session: AsyncSession, slug: str) -> Workspace:
    return await auth_service.create_workspace(session, slug)


async def _assistant(session: AsyncSession, workspace_id: int, description: str) -> Assistant:
    assistant = Assistant(
        workspace_id=workspace_id,
        description=description,
        generation_config="offline",
        max_responses=10,
        max_msg_length=1000,
        max_consecutive_tool_calls=3,
    )
    return await AssistantRepository(session).add(assistant)


async def _chat(session: AsyncSession, workspace_id: int, assistant_id: int) -> Chat:
    chat = Chat(
        workspace_id=workspace_id, assistant_id=assistant_id, max_responses=10, max_msg_length=1000
    )
    return await ChatRepository(session).add(chat)


async def _message(session: AsyncSession, chat_id: int, msg_num: int, **values: object) -> Message:
    message = Message(chat_id=chat_id, msg_num=msg_num, role=MessageRole.USER, **values)
    return await MessageRepository(session).add(message)


# --- auth ---------------------------------------------------------------------------------------


async def test_workspaces_by_slug_and_the_webhook_secret_written_once(
    session: AsyncSession,
) -> None:
    workspaces = WorkspaceRepository(session)
    acme = await _workspace(session, "acme")
    assert await workspaces.any_exists()
    assert await workspaces.slug_taken("acme")
    assert not await workspaces.slug_taken("globex")
    assert await workspaces.by_slug("acme") is acme
    assert await workspaces.by_slug("globex") is None

    made = acme.webhook_secret
    assert made is not None
    # A secret that is set is never replaced.
    await workspaces.set_webhook_secret_if_missing(acme.id, "whsec_other")
    assert await workspaces.webhook_secret(acme.id, fresh=True) == made

    older = await workspaces.add(Workspace(slug="older", name="Older"))
    assert await workspaces.webhook_secret(older.id) is None
    await workspaces.set_webhook_secret_if_missing(older.id, "whsec_first")
    await workspaces.set_webhook_secret_if_missing(older.id, "whsec_second")
    assert await workspaces.webhook_secret(older.id, fresh=True) == "whsec_first"
    assert await workspaces.webhook_secret(older.id + 1000, fresh=True) is None


async def test_principals_by_username_are_per_workspace(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    globex = await _workspace(session, "globex")
    principals = PrincipalRepository(session)
    ana = await principals.add(Principal(workspace_id=acme.id, username="ana"))
    assert await principals.by_username(acme.id, "ana") is ana
    assert await principals.by_username(globex.id, "ana") is None
    service = await principals.by_username(acme.id, auth_service.SERVICE_USERNAME)
    assert service is not None and service.kind == PrincipalKind.SERVICE


async def test_a_revoked_key_has_no_owner_but_its_hash_stays_taken(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    key, raw = await auth_service.create_api_key(session, acme.id, Role.MEMBER, username="max")
    keys = ApiKeyRepository(session)
    owner = await keys.active_owner(auth_service.hash_key(raw))
    assert owner is not None
    assert (owner.api_key_id, owner.workspace_id, owner.principal_id) == (
        key.id,
        acme.id,
        key.principal_id,
    )
    assert owner.role is Role.MEMBER
    assert await keys.active_owner(auth_service.hash_key(raw + "x")) is None

    await keys.update(key, {"revoked_at": utcnow()})
    assert await keys.active_owner(auth_service.hash_key(raw)) is None
    assert await keys.hash_taken(auth_service.hash_key(raw))
    assert not await keys.hash_taken(auth_service.hash_key(raw + "x"))


async def test_an_empty_database_has_no_workspace(session: AsyncSession) -> None:
    # Each test starts from the empty database of the migrations (what the bootstrap checks).
    assert not await WorkspaceRepository(session).any_exists()
    assert not await ApiKeyRepository(session).hash_taken("0" * 64)


# --- chats: tickets, senders, settings, messages --------------------------------------------------


async def test_tickets_attach_once_in_order_and_answer_whether_a_chat_carries_one(
    session: AsyncSession,
) -> None:
    acme = await _workspace(session, "acme")
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    other = await _chat(session, acme.id, assistant.id)
    tickets = TicketRepository(session)
    first, second, third = (str(uuid.uuid4()) for _ in range(3))

    await tickets.attach(chat.id, [])
    assert await tickets.ids_of(chat.id) == []
    await tickets.attach(chat.id, [first, second, first])
    await tickets.attach(chat.id, [second])  # a repeat is a no-op
    await tickets.attach(chat.id, [third, second])
    found = await tickets.ids_of(chat.id)
    assert sorted(found) == sorted([first, second, third])
    assert found.index(third) == 2  # attached last
    assert await tickets.ids_of(other.id) == []

    assert await tickets.carries_any(chat.id, [str(uuid.uuid4()), third])
    assert not await tickets.carries_any(chat.id, [str(uuid.uuid4())])
    assert not await tickets.carries_any(other.id, [first])


async def test_senders_and_their_uuids_are_scoped_to_a_workspace(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    globex = await _workspace(session, "globex")
    principals = PrincipalRepository(session)
    ana = await principals.add(Principal(workspace_id=acme.id, username="ana"))
    bo = await principals.add(Principal(workspace_id=acme.id, username="bo"))
    stranger = await principals.add(Principal(workspace_id=globex.id, username="cy"))
    ana_uuid = (await SessionRepository(session).ensure(acme.id, ana.id)).user_uuid
    stranger_uuid = (await SessionRepository(session).ensure(globex.id, stranger.id)).user_uuid
    senders = SenderRepository(session)

    ids = {ana.id, bo.id, stranger.id}
    assert {p.id for p in await senders.in_workspace(acme.id, ids)} == {ana.id, bo.id}
    assert await senders.uuids(acme.id, ids) == {ana.id: ana_uuid}  # bo has none yet
    assert await senders.uuid_of(acme.id, ana.id) == ana_uuid
    assert await senders.uuid_of(acme.id, bo.id) is None

    assert await senders.by_uuid(ana_uuid) == (ana, acme.id)
    assert await senders.by_uuid(stranger_uuid) == (stranger, globex.id)
    assert await senders.by_uuid(str(uuid.uuid4())) is None
    assert await senders.in_workspace_by_uuid(acme.id, ana_uuid) is ana
    assert await senders.in_workspace_by_uuid(acme.id, stranger_uuid) is None


async def test_an_external_sender_is_registered_once_per_uuid(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    senders = SenderRepository(session)
    customer = str(uuid.uuid4())
    registered = await senders.add_external(acme.id, customer, f"external:{customer}")
    assert registered.kind is PrincipalKind.EXTERNAL
    assert await senders.in_workspace_by_uuid(acme.id, customer) is registered

    # What a concurrent post that lost the race sees: the unique constraints refuse the second
    # registration, its savepoint rolls back, and the first one is found.
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await senders.add_external(acme.id, customer, f"external:{customer}")
    assert await senders.in_workspace_by_uuid(acme.id, customer) == registered


async def test_chat_settings_are_none_until_a_workspace_has_them(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    settings = ChatSettingsRepository(session)
    assert await settings.of_workspace(acme.id) is None
    stored = await settings.add(ChatSettings(workspace_id=acme.id, moderation_policy={"x": 1}))
    assert await settings.of_workspace(acme.id) is stored
    assert await settings.of_workspace(acme.id + 1000) is None


async def test_chats_by_uuid_are_scoped_to_the_caller(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    globex = await _workspace(session, "globex")
    ana = await PrincipalRepository(session).add(Principal(workspace_id=acme.id, username="ana"))
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    chats = ChatRepository(session)
    assert await chats.by_uuid(ChatScope(acme.id, None), chat.uuid) is chat
    assert await chats.by_uuid(ChatScope(globex.id, None), chat.uuid) is None
    assert await chats.by_uuid(ChatScope(acme.id, ana.id), chat.uuid) is None
    assert await chats.by_uuid(ChatScope(acme.id, None), str(uuid.uuid4())) is None


async def test_visible_pages_of_a_chat_and_of_one_sub_thread(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    thread = str(uuid.uuid4())
    await _message(session, chat.id, 3, thread_key=thread)
    await _message(session, chat.id, 1)
    await _message(session, chat.id, 2, visible=False, thread_key=thread)
    await _message(session, chat.id, 4)
    messages = MessageRepository(session)

    page = await messages.visible_page(chat.id, None, PAGE)
    assert (page.total, [m.msg_num for m in page.items]) == (3, [1, 3, 4])
    page = await messages.visible_page(chat.id, thread, PAGE)
    assert (page.total, [m.msg_num for m in page.items]) == (1, [3])
    page = await messages.visible_page(chat.id, str(uuid.uuid4()), PAGE)
    assert page.total == 0


async def test_a_message_by_external_id_is_read_afresh(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    other = await _chat(session, acme.id, assistant.id)
    stored = await _message(session, chat.id, 1, external_id="ext-1", content="stored")
    messages = MessageRepository(session)
    assert await messages.by_external_id(other.id, "ext-1") is None
    assert await messages.by_external_id(chat.id, "ext-2") is None

    stored.content = "changed here, never flushed"
    found = await messages.by_external_id(chat.id, "ext-1")
    assert found is stored
    assert found.content == "stored"  # populate_existing: the row as the database has it


async def test_an_assistant_summary_names_deleted_assistants_too(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    assistants = AssistantRepository(session)
    live = await _assistant(session, acme.id, "Help desk")
    gone = await _assistant(session, acme.id, "Old bot")
    await assistants.update(gone, {"deleted_at": utcnow()})
    assert await assistants.summary(live.id) == (live.id, "Help desk", False)
    assert await assistants.summary(gone.id) == (gone.id, "Old bot", True)


# --- exports ------------------------------------------------------------------------------------


async def test_export_rows_count_and_scope(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    globex = await _workspace(session, "globex")
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    theirs = await _chat(session, globex.id, (await _assistant(session, globex.id, "X")).id)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(1, 6):
        at = t0 + timedelta(minutes=n)
        await _message(session, chat.id, n, created_at=at, updated_at=at)
    await _message(session, theirs.id, 1)
    exports = ExportRepository(session)

    assert await exports.has_chat(acme.id, chat.id)
    assert not await exports.has_chat(acme.id, theirs.id)
    filters = ExportFilters(workspace_id=acme.id, start=t0 + timedelta(minutes=2))
    assert await exports.count(filters) == 4
    batches: list[int] = []
    numbers: list[int] = []
    async with exports.rows(filters, 3) as rows:
        async for batch in rows:
            batches.append(len(batch))
            numbers += [row[10] for row in batch]  # msg_num
    assert batches == [3, 1]
    assert numbers == [2, 3, 4, 5]
    assert await exports.count(ExportFilters(workspace_id=acme.id, chat_id=theirs.id)) == 0


async def test_export_rows_carry_the_stored_status_text(session: AsyncSession) -> None:
    acme = await _workspace(session, "acme")
    assistant = await _assistant(session, acme.id, "Help desk")
    chat = await _chat(session, acme.id, assistant.id)
    await _message(session, chat.id, 1, status=MessageStatus.CANCELLED)
    async with ExportRepository(session).rows(ExportFilters(workspace_id=acme.id), 10) as rows:
        (batch,) = [batch async for batch in rows]
    (row,) = batch
    assert (row[12], row[22]) == ("user", "cancelled")
