"""The assistant service on PostgreSQL and SQLite: defaults, generator and tool references,
ordered tool lists, workspace scoping, soft deletion and the stored JSON and timestamps."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.models import Assistant
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth.service import create_workspace
from chatsvc.config import Settings
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import Invalid, NotFound
from chatsvc.kit.pagination import PageParams
from chatsvc.tools.models import Tool, ToolKind

ALL = PageParams(page=1, page_size=100)


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    return (await create_workspace(session, "ws")).id


async def add_tools(
    session: AsyncSession, workspace_id: int, count: int, *, deleted: bool = False
) -> list[int]:
    tools = [
        Tool(
            workspace_id=workspace_id,
            kind=ToolKind.SCRIPT.value,
            name=f"tool {n}",
            deleted_at=utcnow() if deleted else None,
        )
        for n in range(count)
    ]
    session.add_all(tools)
    await session.flush()
    return [tool.id for tool in tools]


async def create(
    session: AsyncSession, workspace_id: int, settings: Settings, **values: Any
) -> Assistant:
    data = AssistantIn.model_validate({"description": "Help desk", **values})
    return await assistant_service.create_assistant(session, workspace_id, data, settings)


async def reread(session: AsyncSession, workspace_id: int, assistant_id: int) -> Assistant:
    """The assistant as stored: read back from the database, not from the identity map."""
    session.expunge_all()
    return await assistant_service.get_assistant(session, workspace_id, assistant_id)


# --- create and read -----------------------------------------------------------------------------


async def test_create_applies_the_documented_defaults(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, settings)

    stored = await reread(session, workspace_id, created.id)
    assert stored.id == created.id
    assert stored.workspace_id == workspace_id
    assert stored.description == "Help desk"
    assert stored.generation_config == settings.default_generator
    assert stored.generation_config_pretools is None
    assert stored.system_prompt == ""
    assert stored.temperature == 0.7
    assert (stored.max_responses, stored.max_msg_length, stored.max_consecutive_tool_calls) == (
        1000,
        4000,
        5,
    )
    assert stored.strategy_to_optimize_tokens == "none"
    assert stored.matrix_mode_available is False
    assert stored.faq_available and stored.fixed_available and stored.lessons_available
    assert stored.realtime_available and stored.streaming_available
    assert stored.colors is None
    assert stored.logo is None
    assert stored.deleted_at is None
    assert (stored.tools, stored.pretools) == ([], [])
    assert (stored.retrieval_faq, stored.retrieval_fixed_faq, stored.retrieval_lessons) == (0, 0, 0)


async def test_create_stores_every_field(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    values: dict[str, Any] = {
        "description": "Support",
        "generation_config": "second",
        "generation_config_pretools": "offline",
        "system_prompt": "Be brief.",
        "temperature": 1.25,
        "max_responses": 7,
        "max_msg_length": 500,
        "max_consecutive_tool_calls": 2,
        "initial_message": "Hello!",
        "end_message": "Bye.",
        "add_to_user_message": "(be nice)",
        "not_info_message": "I don't know.",
        "strategy_to_optimize_tokens": "last_n:10",
        "matrix_mode_available": True,
        "faq_available": False,
        "fixed_available": False,
        "lessons_available": False,
        "realtime_available": False,
        "streaming_available": False,
        "info": "Answers billing questions",
        "logo": "https://example.com/logo.png",
    }

    created = await create(session, workspace_id, settings, **values)

    stored = await reread(session, workspace_id, created.id)
    assert {key: getattr(stored, key) for key in values} == values


async def test_colors_round_trip(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    colors = {"primary": "#1a2b3c", "accent": "rgb(10, 20, 30)", "text": "rebeccapurple"}

    created = await create(session, workspace_id, settings, colors=colors)

    assert (await reread(session, workspace_id, created.id)).colors == colors


async def test_timestamps_are_timezone_aware(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, settings)

    stored = await reread(session, workspace_id, created.id)

    for stamp in (stored.created_at, stored.updated_at):
        assert stamp.utcoffset() == timedelta(0)
    assert stored.updated_at >= stored.created_at


async def test_unknown_generator_is_invalid(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    with pytest.raises(Invalid) as raised:
        await create(session, workspace_id, settings, generation_config_pretools="nope")

    assert [e.field for e in raised.value.errors] == ["generation_config_pretools"]
    assert "nope" in raised.value.errors[0].message
    assert (await assistant_service.list_assistants(session, workspace_id, ALL)).total == 0


# --- tools ---------------------------------------------------------------------------------------


async def test_tool_lists_keep_their_order(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    t1, t2, t3 = await add_tools(session, workspace_id, 3)

    created = await create(session, workspace_id, settings, tools=[t3, t1, t2], pretools=[t2, t3])

    assert (created.tools, created.pretools) == ([t3, t1, t2], [t2, t3])
    stored = await reread(session, workspace_id, created.id)
    assert (stored.tools, stored.pretools) == ([t3, t1, t2], [t2, t3])


async def test_update_replaces_one_tool_list_and_keeps_the_other(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    t1, t2, t3 = await add_tools(session, workspace_id, 3)
    created = await create(session, workspace_id, settings, tools=[t1, t2, t3], pretools=[t1])

    updated = await assistant_service.update_assistant(
        session, workspace_id, created.id, {"tools": [t3, t1]}, settings
    )

    assert (updated.tools, updated.pretools) == ([t3, t1], [t1])
    stored = await reread(session, workspace_id, created.id)
    assert (stored.tools, stored.pretools) == ([t3, t1], [t1])


async def test_full_replace_clears_omitted_tool_lists(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    t1, t2 = await add_tools(session, workspace_id, 2)
    created = await create(session, workspace_id, settings, tools=[t1, t2], pretools=[t2])
    replacement = AssistantIn(description="Replaced").model_dump()

    await assistant_service.update_assistant(
        session, workspace_id, created.id, replacement, settings
    )

    stored = await reread(session, workspace_id, created.id)
    assert (stored.description, stored.tools, stored.pretools) == ("Replaced", [], [])


@pytest.mark.parametrize("slot", ["tools", "pretools"])
async def test_unknown_tool_ids_are_invalid(
    session: AsyncSession, workspace_id: int, settings: Settings, slot: str
) -> None:
    (known,) = await add_tools(session, workspace_id, 1)
    (gone,) = await add_tools(session, workspace_id, 1, deleted=True)
    stranger = (await create_workspace(session, "stranger")).id
    (foreign,) = await add_tools(session, stranger, 1)
    missing = 987_654_321

    with pytest.raises(Invalid) as raised:
        await create(session, workspace_id, settings, **{slot: [known, gone, foreign, missing]})

    assert [e.field for e in raised.value.errors] == [slot]
    named = {int(number) for number in re.findall(r"\d+", raised.value.errors[0].message)}
    assert named == {gone, foreign, missing}
    assert (await assistant_service.list_assistants(session, workspace_id, ALL)).total == 0


async def test_update_with_unknown_tool_is_invalid_and_changes_nothing(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    (t1,) = await add_tools(session, workspace_id, 1)
    created = await create(session, workspace_id, settings, tools=[t1])

    with pytest.raises(Invalid) as raised:
        await assistant_service.update_assistant(
            session,
            workspace_id,
            created.id,
            {"pretools": [987_654_321], "temperature": 1.0},
            settings,
        )

    assert [e.field for e in raised.value.errors] == ["pretools"]
    stored = await reread(session, workspace_id, created.id)
    assert (stored.tools, stored.pretools, stored.temperature) == ([t1], [], 0.7)


# --- list, update, delete ------------------------------------------------------------------------


async def test_list_pages_in_id_order_within_the_workspace(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    ids = [
        (await create(session, workspace_id, settings, description=f"A{n}")).id for n in range(5)
    ]
    stranger = (await create_workspace(session, "stranger")).id
    await create(session, stranger, settings)

    pages = [
        await assistant_service.list_assistants(
            session, workspace_id, PageParams(page=n, page_size=2)
        )
        for n in (1, 2, 3)
    ]

    assert [[a.id for a in page.items] for page in pages] == [ids[:2], ids[2:4], ids[4:]]
    assert [page.total for page in pages] == [5, 5, 5]
    assert [page.has_next for page in pages] == [True, True, False]
    assert [page.has_previous for page in pages] == [False, True, True]


async def test_partial_update_changes_only_the_given_fields(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, settings, system_prompt="Be brief.", info="i")
    before = created.updated_at

    await assistant_service.update_assistant(
        session, workspace_id, created.id, {"temperature": 1.5, "info": None}, settings
    )

    stored = await reread(session, workspace_id, created.id)
    assert (stored.temperature, stored.info) == (1.5, None)
    assert (stored.description, stored.system_prompt) == ("Help desk", "Be brief.")
    assert stored.updated_at >= before
    assert stored.created_at == created.created_at


async def test_update_without_a_generator_takes_the_default(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, settings, generation_config="second")

    updated = await assistant_service.update_assistant(
        session, workspace_id, created.id, {"generation_config": None}, settings
    )

    assert updated.generation_config == settings.default_generator


async def test_delete_hides_the_assistant(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    kept = await create(session, workspace_id, settings, description="Kept")
    gone = await create(session, workspace_id, settings, description="Gone")

    await assistant_service.delete_assistant(session, workspace_id, gone.id)

    listed = await assistant_service.list_assistants(session, workspace_id, ALL)
    assert ([a.id for a in listed.items], listed.total) == ([kept.id], 1)
    with pytest.raises(NotFound):
        await assistant_service.get_assistant(session, workspace_id, gone.id)
    with pytest.raises(NotFound):
        await assistant_service.ensure_assistant(session, workspace_id, gone.id)
    with pytest.raises(NotFound):
        await assistant_service.update_assistant(
            session, workspace_id, gone.id, {"temperature": 1.0}, settings
        )
    with pytest.raises(NotFound):
        await assistant_service.delete_assistant(session, workspace_id, gone.id)
    await assistant_service.ensure_assistant(session, workspace_id, kept.id)


async def test_other_workspace_cannot_reach_the_assistant(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    created = await create(session, workspace_id, settings)
    stranger = (await create_workspace(session, "stranger")).id

    assert (await assistant_service.list_assistants(session, stranger, ALL)).items == []
    with pytest.raises(NotFound):
        await assistant_service.get_assistant(session, stranger, created.id)
    with pytest.raises(NotFound):
        await assistant_service.ensure_assistant(session, stranger, created.id)
    with pytest.raises(NotFound):
        await assistant_service.update_assistant(
            session, stranger, created.id, {"description": "Hijacked"}, settings
        )
    with pytest.raises(NotFound):
        await assistant_service.delete_assistant(session, stranger, created.id)
    stored = await reread(session, workspace_id, created.id)
    assert (stored.description, stored.deleted_at) == ("Help desk", None)


async def test_missing_assistant_is_not_found(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    with pytest.raises(NotFound):
        await assistant_service.get_assistant(session, workspace_id, 987_654_321)
    with pytest.raises(NotFound):
        await assistant_service.update_assistant(
            session, workspace_id, 987_654_321, {"temperature": 1.0}, settings
        )
    with pytest.raises(NotFound):
        await assistant_service.delete_assistant(session, workspace_id, 987_654_321)
