"""The knowledge service on PostgreSQL and SQLite: the three kinds of items live under a live
assistant of the caller's workspace, in id order, with content capped by settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth.service import create_workspace
from chatsvc.config import Settings
from chatsvc.kit.errors import Invalid, NotFound
from chatsvc.kit.pagination import PageParams
from chatsvc.knowledge import service as knowledge_service
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, KnowledgeItem, Lesson
from chatsvc.knowledge.schemas import CommonQuestionIn, FixedResponseIn, KnowledgeIn, LessonIn

ALL = PageParams(page=1, page_size=100)


@dataclass(frozen=True)
class Kind:
    schema: type[KnowledgeIn]
    model: type[KnowledgeItem]
    extra: dict[str, str] = field(default_factory=dict)
    count_field: str = ""

    def data(self, n: int = 1, /, **overrides: Any) -> KnowledgeIn:
        values: dict[str, Any] = {
            "name": f"Question {n}",
            "content": f"Answer {n}",
            "additional_metadata": {"tags": [f"tag-{n}", "faq"], "empty": []},
            **self.extra,
        }
        values.update(overrides)
        return self.schema.model_validate(values)


COMMON = Kind(CommonQuestionIn, CommonQuestion, count_field="retrieval_faq")
FIXED = Kind(FixedResponseIn, FixedResponse, {"topic": "billing"}, "retrieval_fixed_faq")
LESSONS = Kind(LessonIn, Lesson, {"context_of_application": "refunds"}, "retrieval_lessons")
ALL_KINDS = (COMMON, FIXED, LESSONS)
KINDS = pytest.mark.parametrize(
    "kind", ALL_KINDS, ids=["common_questions", "fixed_responses", "lessons"]
)


def fields(item: KnowledgeItem, kind: Kind) -> dict[str, Any]:
    names = ["name", "content", "additional_metadata", *kind.extra]
    return {name: getattr(item, name) for name in names}


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    return (await create_workspace(session, "ws")).id


@pytest.fixture
async def assistant_id(session: AsyncSession, workspace_id: int, settings: Settings) -> int:
    data = AssistantIn(description="Help desk")
    return (await assistant_service.create_assistant(session, workspace_id, data, settings)).id


async def listed(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind
) -> list[dict[str, Any]]:
    """The items as stored: read back from the database, not from the session's identity map."""
    session.expunge_all()
    page = await knowledge_service.list_items(session, workspace_id, assistant_id, kind.model, ALL)
    return [{"id": item.id, **fields(item, kind)} for item in page.items]


@KINDS
async def test_create_stores_every_field(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    data = kind.data(1)

    item = await knowledge_service.create_item(session, workspace_id, assistant_id, data, settings)

    assert isinstance(item, kind.model)
    assert item.assistant_id == assistant_id
    assert fields(item, kind) == data.model_dump()
    assert await listed(session, workspace_id, assistant_id, kind) == [
        {"id": item.id, **data.model_dump()}
    ]


@KINDS
async def test_optional_fields_default_to_empty(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    data = kind.schema(name="n", content="c")

    item = await knowledge_service.create_item(session, workspace_id, assistant_id, data, settings)

    expected = {"name": "n", "content": "c", "additional_metadata": {}}
    expected.update(dict.fromkeys(kind.extra, ""))
    assert await listed(session, workspace_id, assistant_id, kind) == [{"id": item.id, **expected}]


@KINDS
async def test_metadata_round_trips(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    metadata = {"ünïcode key": ["ö", "日本語", ""], "quotes": ['"a"', "b'c"], "none": []}

    item = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(additional_metadata=metadata), settings
    )

    stored = await listed(session, workspace_id, assistant_id, kind)
    assert stored[0]["id"] == item.id
    assert stored[0]["additional_metadata"] == metadata


@KINDS
async def test_timestamps_are_timezone_aware(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    created = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(), settings
    )
    session.expunge_all()

    item = await knowledge_service.get_item(
        session, workspace_id, assistant_id, kind.model, created.id
    )

    assert item is not created
    for stamp in (item.created_at, item.updated_at):
        assert stamp.utcoffset() == timedelta(0)


@KINDS
async def test_list_pages_in_id_order(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    ids = [
        (
            await knowledge_service.create_item(
                session, workspace_id, assistant_id, kind.data(n), settings
            )
        ).id
        for n in range(5)
    ]
    assert ids == sorted(ids)

    def page(number: int) -> PageParams:
        return PageParams(page=number, page_size=2)

    first = await knowledge_service.list_items(
        session, workspace_id, assistant_id, kind.model, page(1)
    )
    middle = await knowledge_service.list_items(
        session, workspace_id, assistant_id, kind.model, page(2)
    )
    last = await knowledge_service.list_items(
        session, workspace_id, assistant_id, kind.model, page(3)
    )
    beyond = await knowledge_service.list_items(
        session, workspace_id, assistant_id, kind.model, page(4)
    )

    assert [item.id for item in first.items] == ids[:2]
    assert [item.id for item in middle.items] == ids[2:4]
    assert [item.id for item in last.items] == ids[4:]
    assert beyond.items == []
    assert {p.total for p in (first, middle, last, beyond)} == {5}
    assert (first.has_previous, first.has_next) == (False, True)
    assert (middle.has_previous, middle.has_next) == (True, True)
    assert (last.has_previous, last.has_next) == (True, False)
    assert beyond.has_next is False


@KINDS
async def test_list_holds_only_this_assistants_items(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    other = await assistant_service.create_assistant(
        session, workspace_id, AssistantIn(description="Other"), settings
    )
    mine = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(1), settings
    )
    await knowledge_service.create_item(session, workspace_id, other.id, kind.data(2), settings)

    page = await knowledge_service.list_items(session, workspace_id, assistant_id, kind.model, ALL)

    assert [item.id for item in page.items] == [mine.id]
    assert page.total == 1


async def test_kinds_are_kept_apart(
    session: AsyncSession, workspace_id: int, assistant_id: int, settings: Settings
) -> None:
    created = {
        kind.model: await knowledge_service.create_item(
            session, workspace_id, assistant_id, kind.data(), settings
        )
        for kind in ALL_KINDS
    }

    for kind in ALL_KINDS:
        page = await knowledge_service.list_items(
            session, workspace_id, assistant_id, kind.model, ALL
        )
        assert page.items == [created[kind.model]]


@KINDS
async def test_update_replaces_every_field(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    created = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(1), settings
    )
    created_at, first_update = created.created_at, created.updated_at
    replacement = kind.schema(name="Renamed", content="New answer")

    updated = await knowledge_service.update_item(
        session, workspace_id, assistant_id, created.id, replacement, settings
    )

    expected = {"name": "Renamed", "content": "New answer", "additional_metadata": {}}
    expected.update(dict.fromkeys(kind.extra, ""))
    assert updated.id == created.id
    assert fields(updated, kind) == expected
    assert await listed(session, workspace_id, assistant_id, kind) == [
        {"id": created.id, **expected}
    ]
    stored = await knowledge_service.get_item(
        session, workspace_id, assistant_id, kind.model, created.id
    )
    assert stored.created_at == created_at
    assert stored.updated_at >= first_update


@KINDS
async def test_delete_removes_the_item(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    first = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(1), settings
    )
    second = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(2), settings
    )
    first_id, second_id = first.id, second.id

    await knowledge_service.delete_item(session, workspace_id, assistant_id, kind.model, first_id)

    assert [item["id"] for item in await listed(session, workspace_id, assistant_id, kind)] == [
        second_id
    ]
    with pytest.raises(NotFound):
        await knowledge_service.get_item(session, workspace_id, assistant_id, kind.model, first_id)
    with pytest.raises(NotFound):
        await knowledge_service.delete_item(
            session, workspace_id, assistant_id, kind.model, first_id
        )
    with pytest.raises(NotFound):
        await knowledge_service.update_item(
            session, workspace_id, assistant_id, first_id, kind.data(3), settings
        )


@KINDS
async def test_content_is_capped_by_settings(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    capped = settings.model_copy(update={"knowledge_max_chars": 10})
    at_limit = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(content="x" * 10), capped
    )

    with pytest.raises(Invalid) as created:
        await knowledge_service.create_item(
            session, workspace_id, assistant_id, kind.data(content="x" * 11), capped
        )
    with pytest.raises(Invalid) as updated:
        await knowledge_service.update_item(
            session, workspace_id, assistant_id, at_limit.id, kind.data(content="y" * 11), capped
        )

    for raised in (created.value, updated.value):
        assert raised.code == "too_long"
        assert [e.field for e in raised.errors] == ["content"]
        assert "10" in raised.errors[0].message
    assert [
        item["content"] for item in await listed(session, workspace_id, assistant_id, kind)
    ] == ["x" * 10]


@pytest.mark.parametrize("kind", [FIXED, LESSONS], ids=["fixed_responses", "lessons"])
async def test_every_text_field_is_capped(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    capped = settings.model_copy(update={"knowledge_max_chars": 10})
    (extra,) = kind.extra
    data = kind.data(name="n" * 11, content="c" * 11, **{extra: "e" * 11})

    with pytest.raises(Invalid) as raised:
        await knowledge_service.create_item(session, workspace_id, assistant_id, data, capped)

    assert raised.value.code == "too_long"
    assert sorted(e.field for e in raised.value.errors) == sorted(["name", "content", extra])


@KINDS
async def test_missing_assistant_is_not_found(
    session: AsyncSession, workspace_id: int, kind: Kind, settings: Settings
) -> None:
    missing = 987_654_321

    with pytest.raises(NotFound):
        await knowledge_service.list_items(session, workspace_id, missing, kind.model, ALL)
    with pytest.raises(NotFound):
        await knowledge_service.create_item(session, workspace_id, missing, kind.data(), settings)
    with pytest.raises(NotFound):
        await knowledge_service.update_item(
            session, workspace_id, missing, 1, kind.data(), settings
        )
    with pytest.raises(NotFound):
        await knowledge_service.delete_item(session, workspace_id, missing, kind.model, 1)


async def assert_unreachable(
    session: AsyncSession,
    workspace_id: int,
    assistant_id: int,
    item_id: int,
    kind: Kind,
    settings: Settings,
) -> None:
    with pytest.raises(NotFound):
        await knowledge_service.list_items(session, workspace_id, assistant_id, kind.model, ALL)
    with pytest.raises(NotFound):
        await knowledge_service.get_item(session, workspace_id, assistant_id, kind.model, item_id)
    with pytest.raises(NotFound):
        await knowledge_service.create_item(
            session, workspace_id, assistant_id, kind.data(), settings
        )
    with pytest.raises(NotFound):
        await knowledge_service.update_item(
            session, workspace_id, assistant_id, item_id, kind.data(), settings
        )
    with pytest.raises(NotFound):
        await knowledge_service.delete_item(
            session, workspace_id, assistant_id, kind.model, item_id
        )


@KINDS
async def test_other_workspace_cannot_reach_the_items(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    item = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(), settings
    )
    stranger = (await create_workspace(session, "stranger")).id

    await assert_unreachable(session, stranger, assistant_id, item.id, kind, settings)
    assert [row["id"] for row in await listed(session, workspace_id, assistant_id, kind)] == [
        item.id
    ]


@KINDS
async def test_item_of_another_assistant_is_not_found(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    item = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(), settings
    )
    other = await assistant_service.create_assistant(
        session, workspace_id, AssistantIn(description="Other"), settings
    )

    with pytest.raises(NotFound):
        await knowledge_service.get_item(session, workspace_id, other.id, kind.model, item.id)
    with pytest.raises(NotFound):
        await knowledge_service.update_item(
            session, workspace_id, other.id, item.id, kind.data(2), settings
        )
    with pytest.raises(NotFound):
        await knowledge_service.delete_item(session, workspace_id, other.id, kind.model, item.id)
    assert await listed(session, workspace_id, assistant_id, kind) == [
        {"id": item.id, **kind.data().model_dump()}
    ]


@KINDS
async def test_deleted_assistant_hides_its_knowledge(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    item = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(), settings
    )

    await assistant_service.delete_assistant(session, workspace_id, assistant_id)

    await assert_unreachable(session, workspace_id, assistant_id, item.id, kind, settings)


@KINDS
async def test_assistant_counts_follow_creates_and_deletes(
    session: AsyncSession, workspace_id: int, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    async def counts() -> dict[str, int]:
        assistant = await assistant_service.get_assistant(session, workspace_id, assistant_id)
        return {k.count_field: getattr(assistant, k.count_field) for k in ALL_KINDS}

    zero = {k.count_field: 0 for k in ALL_KINDS}
    assert await counts() == zero

    first = await knowledge_service.create_item(
        session, workspace_id, assistant_id, kind.data(1), settings
    )
    await knowledge_service.create_item(session, workspace_id, assistant_id, kind.data(2), settings)
    assert await counts() == {**zero, kind.count_field: 2}

    await knowledge_service.delete_item(session, workspace_id, assistant_id, kind.model, first.id)
    assert await counts() == {**zero, kind.count_field: 1}
