"""The chat artifacts service on PostgreSQL and SQLite: typed library items of every kind,
hydrated sections (search, show_selected, limits), drafts with optimistic versions, publication as
bundle revisions that attempts remember, and the analytics refresh."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.artifacts import analytics
from chatsvc.artifacts import service as artifact_service
from chatsvc.artifacts.errors import VersionConflict
from chatsvc.artifacts.kinds import KINDS, ResourceKind
from chatsvc.artifacts.models import Attachment, Bundle, Draft, Resource
from chatsvc.artifacts.repository import DraftRepository
from chatsvc.artifacts.schemas import DraftPatch, Hydrated, HydrateQuery, ResourceIn, SectionQuery
from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import Message
from chatsvc.config import Settings
from chatsvc.kit.errors import Forbidden, Invalid, NotFound
from tests.fixtures.artifacts import People, attempt, entry, item, memory_cache, people

K = ResourceKind


@pytest.fixture
async def team(session: AsyncSession) -> People:
    return await people(session)


def all_sections(**searches: Any) -> tuple[SectionQuery, ...]:
    return tuple(
        SectionQuery(spec.kind, *searches.get(spec.kind.value, (None, False))) for spec in KINDS
    )


async def read(
    session: AsyncSession,
    auth: AuthContext,
    entry_id: int,
    *,
    limit: int = 50,
    **options: Any,
) -> Hydrated:
    sections = options.pop("sections", all_sections())
    query = HydrateQuery(entry_id=entry_id, sections=sections, limit=limit, **options)
    return await artifact_service.hydrate(session, auth, query, memory_cache())


async def change(
    session: AsyncSession, auth: AuthContext, **body: Any
) -> artifact_service.DraftOutcome:
    return await artifact_service.patch_draft(
        session, auth, DraftPatch.model_validate(body), memory_cache()
    )


def names(hydrated: Hydrated, kind: ResourceKind, part: str = "selected") -> list[str]:
    return [i.name for i in getattr(hydrated.sections[kind], part)]


# --- the library ---------------------------------------------------------------------------------


async def test_every_kind_is_stored_in_one_table_with_its_typed_data(
    session: AsyncSession, team: People
) -> None:
    samples: dict[ResourceKind, dict[str, Any]] = {
        K.IMAGE: {"url": "https://cdn.example.com/a.png", "width": 640},
        K.VIDEO: {"url": "https://cdn.example.com/a.mp4", "duration_seconds": 12.5},
        K.QUESTION: {"answer_type": "single_choice", "choices": ["yes", "no"]},
        K.PARAMETER: {"key": "region", "value": "emea"},
        K.PARAMETER_FIELD: {"parameter_key": "budget", "field_type": "number"},
        K.FLAG: {"key": "beta", "enabled": False},
    }
    for spec in KINDS:
        await item(
            session, team.admin, spec.kind, f"{spec.kind.value} one", **samples.get(spec.kind, {})
        )
    rows = (await session.scalars(select(Resource).order_by(Resource.kind))).all()
    assert sorted(r.kind.value for r in rows) == sorted(k.value for k in ResourceKind)
    image = next(r for r in rows if r.kind is K.IMAGE)
    # Normalised by the kind's model: defaults filled in, JSON types.
    assert image.data == {
        "url": "https://cdn.example.com/a.png",
        "alt_text": "",
        "mime_type": None,
        "width": 640,
        "height": None,
    }
    persona = next(r for r in rows if r.kind is K.PERSONA)
    assert persona.data == {"role": "", "tone": "", "instructions": "", "avatar_url": None}


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        (K.IMAGE, {}, "data.url"),
        (K.IMAGE, {"url": "ftp://x/y.png"}, "data.url"),
        (K.QUESTION, {"answer_type": "essay"}, "data.answer_type"),
        (K.QUESTION, {"choices": ["a", "a"]}, "data.choices"),
        (K.PARAMETER, {"key": "9lives"}, "data.key"),
        (
            K.VIDEO,
            {"url": "https://x.example/v.mp4", "duration_seconds": -1},
            "data.duration_seconds",
        ),
    ],
)
async def test_data_that_breaks_its_kinds_model_is_refused_and_nothing_is_stored(
    session: AsyncSession, team: People, kind: ResourceKind, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await item(session, team.admin, kind, "bad", **data)
    assert [e.field for e in caught.value.errors] == [field]
    assert (await session.scalars(select(Resource))).all() == []


async def test_only_admins_add_to_the_library(session: AsyncSession, team: People) -> None:
    with pytest.raises(Forbidden):
        await artifact_service.create_resource(
            session, team.member, ResourceIn(kind=K.NAME, name="Ann"), memory_cache()
        )


# --- reading sections ----------------------------------------------------------------------------


async def test_sections_list_available_items_by_name_matching_the_search(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    for name, description in [
        ("Zoe the buyer", ""),
        ("angry customer", "shouts a lot"),
        ("Bob", "a calm BUYER"),
        ("100% sure", ""),
    ]:
        await item(session, team.admin, K.PERSONA, name, description)
    await item(session, team.admin, K.DOCUMENT, "buyer guide")

    everything = await read(session, team.member, entry_id)
    assert names(everything, K.PERSONA, "available") == [
        "100% sure",
        "angry customer",
        "Bob",
        "Zoe the buyer",
    ]
    assert everything.sections[K.PERSONA].available_total == 4
    assert everything.group_id == f"{entry_id}:0" and everything.revision == 0
    assert all(not s.selected for s in everything.sections.values())

    searched = await read(
        session, team.member, entry_id, sections=all_sections(persona=("buyer", False))
    )
    # Name or description, case-insensitively; other sections are not filtered.
    assert names(searched, K.PERSONA, "available") == ["Bob", "Zoe the buyer"]
    assert searched.sections[K.PERSONA].search == "buyer"
    assert names(searched, K.DOCUMENT, "available") == ["buyer guide"]
    # LIKE wildcards are literal characters.
    literal = await read(
        session, team.member, entry_id, sections=all_sections(persona=("0%", False))
    )
    assert names(literal, K.PERSONA, "available") == ["100% sure"]

    limited = await read(session, team.member, entry_id, limit=2)
    assert names(limited, K.PERSONA, "available") == ["100% sure", "angry customer"]
    assert limited.sections[K.PERSONA].available_total == 4


async def test_show_selected_lists_selected_items_among_the_available_ones(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    anna = await item(session, team.admin, K.PERSONA, "Anna")
    await item(session, team.admin, K.PERSONA, "Bert")
    await change(session, team.admin, chat_entry_id=str(entry_id), persona_ids=[anna], publish=True)

    hidden = await read(session, team.member, entry_id)
    assert names(hidden, K.PERSONA) == ["Anna"]
    assert names(hidden, K.PERSONA, "available") == ["Bert"]

    shown = await read(session, team.member, entry_id, sections=all_sections(persona=(None, True)))
    assert shown.sections[K.PERSONA].show_selected is True
    assert [(i.name, i.selected, i.position) for i in shown.sections[K.PERSONA].available] == [
        ("Anna", True, 0),
        ("Bert", False, None),
    ]


async def test_reads_stay_in_the_workspace(session: AsyncSession, settings: Settings) -> None:
    acme = await people(session, "acme")
    globex = await people(session, "globex")
    entry_id = await entry(session, acme.workspace_id, settings)
    await item(session, acme.admin, K.NAME, "Acme name")
    await item(session, globex.admin, K.NAME, "Globex name")
    hydrated = await read(session, acme.member, entry_id)
    assert names(hydrated, K.NAME, "available") == ["Acme name"]
    with pytest.raises(NotFound):
        await read(session, globex.admin, entry_id)


# --- drafts and publication ----------------------------------------------------------------------


async def test_a_draft_starts_from_the_published_bundle_and_counts_versions(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    doc = await item(session, team.admin, K.DOCUMENT, "Price list")
    anna = await item(session, team.admin, K.PERSONA, "Anna")
    await change(session, team.admin, chat_entry_id=str(entry_id), document_ids=[doc], publish=True)

    first = await change(session, team.member, chat_entry_id=str(entry_id), persona_ids=[anna])
    assert (first.version, first.created) == (1, True)
    # The document selection came from revision 1; only the personas changed.
    assert first.form_state["document_ids"] == [doc]
    assert first.form_state["persona_ids"] == [anna]
    assert first.form_state["base_revision"] == 1

    second = await change(
        session,
        team.member,
        chat_entry_id=str(entry_id),
        expected_version=1,
        name="Closing practice",
        objectives=["Ask for the order", "Handle the price objection"],
    )
    assert (second.draft_id, second.version, second.created) == (first.draft_id, 2, False)
    assert second.form_state["persona_ids"] == [anna]  # omitted: unchanged

    cleared = await change(
        session,
        team.member,
        input_draft_id=first.draft_id,
        expected_version=2,
        persona_ids=None,
        name=None,
    )
    assert cleared.version == 3
    assert (cleared.form_state["persona_ids"], cleared.form_state["name"]) == ([], None)
    assert cleared.form_state["objectives"] == ["Ask for the order", "Handle the price objection"]


async def test_a_stale_version_is_refused_with_the_current_one_and_changes_nothing(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    with pytest.raises(VersionConflict) as no_draft:
        await change(session, team.member, chat_entry_id=str(entry_id), expected_version=3)
    assert (no_draft.value.current_version, no_draft.value.draft_id) == (0, None)

    made = await change(session, team.member, chat_entry_id=str(entry_id), name="v1")
    for stale in (0, 2):
        with pytest.raises(VersionConflict) as caught:
            await change(
                session, team.member, chat_entry_id=str(entry_id), expected_version=stale, name="x"
            )
        assert (caught.value.current_version, caught.value.draft_id) == (1, made.draft_id)
    draft = await session.scalar(select(Draft).execution_options(populate_existing=True))
    assert draft is not None
    assert (draft.version, draft.form_state["name"]) == (1, "v1")


async def test_selected_ids_must_name_library_items_of_their_kind(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    doc = await item(session, team.admin, K.DOCUMENT, "Price list")
    missing = "0b7c5e0e-5c3f-4a53-9d0e-000000000000"
    with pytest.raises(Invalid) as caught:
        await change(session, team.member, chat_entry_id=str(entry_id), persona_ids=[doc, missing])
    assert [e.field for e in caught.value.errors] == ["persona_ids[0]", "persona_ids[1]"]
    assert "is a document, not a persona" in caught.value.errors[0].message
    assert (await session.scalars(select(Draft))).all() == []


async def test_drafts_are_their_owners_and_only_admins_publish(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    mine = await change(session, team.member, chat_entry_id=str(entry_id), name="mine")
    with pytest.raises(NotFound):
        await change(session, team.other_member, input_draft_id=mine.draft_id, expected_version=1)
    with pytest.raises(Forbidden):
        await change(
            session, team.member, input_draft_id=mine.draft_id, expected_version=1, publish=True
        )
    # An admin sees the workspace: it may review and publish a member's draft.
    published = await change(
        session, team.admin, input_draft_id=mine.draft_id, expected_version=1, publish=True
    )
    assert published.published_revision == 1
    other = await change(session, team.other_member, chat_entry_id=str(entry_id), name="hers")
    assert other.created and other.draft_id != mine.draft_id


async def test_publishing_makes_the_next_revision_with_the_drafts_new_items(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    anna = await item(session, team.admin, K.PERSONA, "Anna")
    before = await attempt(session, team.member, entry_id, [("user", True)])
    draft = await change(
        session,
        team.admin,
        chat_entry_id=str(entry_id),
        persona_ids=[anna],
        problem_statement="The client thinks we are too expensive.\nThey compare us with X.",
        images=[{"name": "Logo", "url": "https://cdn.example.com/logo.png", "alt_text": "logo"}],
        questions=[{"name": "Budget?", "answer_type": "number", "required": True}],
    )
    in_draft = await read(session, team.admin, entry_id, draft_id=draft.draft_id)
    assert in_draft.draft_version == 1 and in_draft.draft_id == draft.draft_id
    assert [(i.name, i.new, i.id) for i in in_draft.sections[K.IMAGE].selected] == [
        ("Logo", True, None)
    ]

    published = await change(
        session,
        team.admin,
        input_draft_id=draft.draft_id,
        expected_version=1,
        options=[{"name": "Yes", "value": "y", "correct": True}],
        publish=True,
    )
    assert (published.published_revision, published.version) == (1, 2)
    assert await session.scalar(select(Draft.id)) is None  # the draft is gone
    bundle = await session.scalar(select(Bundle))
    assert bundle is not None
    assert (bundle.revision, bundle.draft_id, bundle.published_by) == (
        1,
        draft.draft_id,
        team.admin.principal_id,
    )
    # The new items are library items now, selected by id; the returned state has no values.
    state = published.form_state
    assert state["images"] == [] and state["problem_statement"] is None
    assert len(state["image_ids"]) == len(state["question_ids"]) == len(state["option_ids"]) == 1
    after = await attempt(session, team.member, entry_id, [("user", True)])

    current = await read(session, team.member, entry_id)
    assert current.group_id == f"{entry_id}:1"
    assert names(current, K.PERSONA) == ["Anna"]
    assert names(current, K.PROBLEM_STATEMENT) == ["The client thinks we are too expensive."]
    statement = current.sections[K.PROBLEM_STATEMENT].selected[0]
    assert statement.description.endswith("They compare us with X.")
    (question,) = current.sections[K.QUESTION].selected
    assert question.data["answer_type"] == "number" and question.data["required"] is True
    (image,) = current.sections[K.IMAGE].selected
    assert (image.data["url"], image.data["alt_text"], image.new) == (
        "https://cdn.example.com/logo.png",
        "logo",
        False,
    )
    # An attempt shows the revision that was current when it started.
    old = await read(session, team.member, entry_id, attempt=str(before.id))
    assert (old.group_id, names(old, K.PERSONA), old.attempt_id) == (
        f"{entry_id}:0",
        [],
        str(before.id),
    )
    new = await read(session, team.member, entry_id, attempt=after.uuid)
    assert (new.group_id, names(new, K.PERSONA)) == (f"{entry_id}:1", ["Anna"])

    again = await change(
        session, team.admin, chat_entry_id=str(entry_id), persona_ids=[], publish=True
    )
    assert again.published_revision == 2
    assert names(await read(session, team.member, entry_id), K.PERSONA) == []
    assert len((await session.scalars(select(Attachment))).all()) == 5 + 4  # r1: 5, r2: 4


async def test_attempts_are_scoped_like_chats(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    other_entry = await entry(session, team.workspace_id, settings)
    hers = await attempt(session, team.other_member, entry_id)
    with pytest.raises(NotFound):
        await read(session, team.member, entry_id, attempt=str(hers.id))
    with pytest.raises(NotFound):
        await read(session, team.admin, other_entry, attempt=str(hers.id))
    assert (await read(session, team.admin, entry_id, attempt=str(hers.id))).attempt_id == str(
        hers.id
    )


# --- analytics -----------------------------------------------------------------------------------


async def test_refresh_computes_the_statistics_on_both_databases(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    entry_id = await entry(session, team.workspace_id, settings)
    quiet = await entry(session, team.workspace_id, settings)
    first = await attempt(
        session,
        team.member,
        entry_id,
        [("user", True), ("assistant", True), ("user", False), ("assistant", True)],
        like=True,
    )
    second = await attempt(session, team.admin, entry_id, [("user", True)], like=False)
    stale = await analytics.statistics(session, team.workspace_id, entry_id, first.id)
    assert stale.entry.chat_count == 0  # nothing until a refresh

    refreshed = await artifact_service.refresh_analytics(session, team.admin, memory_cache())
    assert refreshed == (
        ["artifact_assistant_stats", "artifact_chat_stats"],
        ["analytics", f"workspace:{team.workspace_id}"],
    )
    stats = await analytics.statistics(session, team.workspace_id, entry_id, first.id)
    entry_stats = stats.entry.model_dump(exclude={"last_message_at"})
    assert entry_stats == {
        "chat_count": 2,
        "message_count": 4,  # the hidden message does not count
        "user_message_count": 2,
        "assistant_message_count": 2,
        "liked_chat_count": 1,
        "disliked_chat_count": 1,
    }
    assert stats.attempt is not None
    assert (stats.attempt.message_count, stats.attempt.user_message_count) == (3, 1)
    times = {
        (m.chat_id, m.msg_num): m.created_at for m in (await session.scalars(select(Message))).all()
    }
    assert stats.attempt.first_message_at == times[first.id, 1]
    assert stats.attempt.last_message_at == times[first.id, 4]
    assert stats.entry.last_message_at == times[second.id, 1]
    assert stats.refreshed_at is not None
    empty = await analytics.statistics(session, team.workspace_id, quiet, None)
    assert (empty.entry.chat_count, empty.attempt) == (0, None)
    assert (await analytics.statistics(session, team.workspace_id, entry_id, second.id)).attempt
    with pytest.raises(Forbidden):
        await artifact_service.refresh_analytics(session, team.member, memory_cache())


async def test_the_conditional_update_is_the_guard_against_a_concurrent_change(
    session: AsyncSession, team: People, settings: Settings
) -> None:
    """Two changes that both read version 1: the second one's UPDATE finds version 2 and
    writes nothing (on PostgreSQL it waits for the first one's commit, then re-checks)."""
    entry_id = await entry(session, team.workspace_id, settings)
    made = await change(session, team.member, chat_entry_id=str(entry_id), name="v1")
    drafts = DraftRepository(session)
    assert await drafts.advance(made.draft_id, 1, {**made.form_state, "name": "first"}) == 2
    assert await drafts.advance(made.draft_id, 1, {**made.form_state, "name": "second"}) is None
    stored = await drafts.get(team.workspace_id, made.draft_id, None)
    assert stored is not None
    assert (stored.version, stored.form_state["name"]) == (2, "first")
