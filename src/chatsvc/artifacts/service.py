"""Chat artifact rules: the resource library, hydrated sections of an entry / attempt / draft,
drafts with optimistic concurrency and their publication as bundle revisions, and the export of
one chat with its bundle. Each function runs in the caller's transaction and raises domain
errors; cached reads are invalidated by tag when something they show changes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.artifacts import analytics
from chatsvc.artifacts.cache import (
    ANALYTICS_TAG,
    TagCache,
    draft_tag,
    entry_tag,
    library_tag,
    workspace_tag,
)
from chatsvc.artifacts.errors import VersionConflict
from chatsvc.artifacts.kinds import KINDS, SPECS, ResourceKind, split_text, validate_data
from chatsvc.artifacts.models import Bundle, Draft, Resource, new_uuid
from chatsvc.artifacts.repository import (
    BundleRepository,
    DraftRepository,
    ResourceRepository,
    Selection,
    find_attempt,
)
from chatsvc.artifacts.schemas import (
    PATCHABLE,
    FormState,
    Hydrated,
    HydrateQuery,
    ItemView,
    ResourceIn,
    SectionView,
    empty_form_state,
)
from chatsvc.assistants import service as assistant_service
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import Chat
from chatsvc.exports.jobs import EXPORT, filters_payload
from chatsvc.exports.schemas import ExportFilters
from chatsvc.jobs import runner as job_runner
from chatsvc.jobs.models import JobState
from chatsvc.kit.errors import Conflict, FieldError, Invalid, NotFound, Unavailable, or_not_found
from chatsvc.kit.pagination import Page, PageParams

# --- the library ---------------------------------------------------------------------------------


async def create_resource(
    session: AsyncSession, auth: AuthContext, data: ResourceIn, cache: TagCache
) -> Resource:
    """A new library item (admin keys): its data validated by its kind's model."""
    auth.require_admin("add items to the resource library")
    resource = Resource(
        id=new_uuid(),
        workspace_id=auth.workspace_id,
        kind=data.kind,
        name=data.name,
        description=data.description,
        data=validate_data(data.kind, data.data),
        created_by=auth.principal_id,
    )
    await ResourceRepository(session).add(resource)
    await cache.invalidate_with(session, [library_tag(auth.workspace_id)])
    return resource


# --- reading sections ----------------------------------------------------------------------------


def group_id(entry_id: int, revision: int) -> str:
    """The bundle a read shows: the entry and its revision (0: nothing published yet)."""
    return f"{entry_id}:{revision}"


async def _draft(
    session: AsyncSession,
    auth: AuthContext,
    draft_id: str,
    entry_id: int | None = None,
    *,
    field: str = "draft_id",
) -> Draft:
    """A draft the caller may see (its own; an admin sees the workspace's), of `entry_id` when
    given (`field` names the input that named the draft)."""
    owner = None if auth.is_admin else auth.principal_id
    draft = await DraftRepository(session).get(auth.workspace_id, draft_id, owner)
    draft = or_not_found(draft, f"Draft {draft_id} not found.", code="draft_not_found")
    if entry_id is not None and draft.assistant_id != entry_id:
        raise Invalid(
            f"Draft {draft_id} belongs to chat entry {draft.assistant_id}, not {entry_id}.",
            errors=[FieldError(field, f"is a draft of chat entry {draft.assistant_id}")],
        )
    return draft


async def _attempt(
    session: AsyncSession, auth: AuthContext, entry_id: int, attempt: str | None
) -> Chat:
    chat = await find_attempt(session, chat_service.scope_of(auth), entry_id, attempt)
    message = (
        f"Attempt {attempt} not found for chat entry {entry_id}."
        if attempt
        else f"Chat entry {entry_id} has no attempt of yours to export yet."
    )
    return or_not_found(chat, message, code="attempt_not_found")


#: a draft's new items per kind, as (name, description, data)
NewItems = dict[ResourceKind, list[tuple[str, str, dict[str, Any]]]]


def _state_selection(state: dict[str, Any]) -> Selection:
    return {spec.kind: list(state.get(spec.ids_field) or []) for spec in KINDS}


def _new_items(state: dict[str, Any]) -> NewItems:
    """A draft's new items per kind as (name, description, data)."""
    found: NewItems = {}
    for spec in KINDS:
        value = state.get(spec.value_field) if spec.value_field else None
        if not value:
            continue
        if spec.value_shape == "text":
            found[spec.kind] = [(*split_text(value), {})]
        elif spec.value_shape == "texts":
            found[spec.kind] = [(*split_text(text), {}) for text in value]
        else:
            items = []
            for obj in value:
                data = {k: v for k, v in obj.items() if k not in ("name", "description")}
                items.append((obj["name"], obj.get("description", ""), data))
            found[spec.kind] = items
    return found


@dataclass(frozen=True, slots=True)
class Shown:
    """The bundle a read or an export shows: a draft's (its selection and new items, on the
    revision it started from), else the revision an attempt started with, else the current one."""

    revision: int
    selection: Selection
    new_items: NewItems
    draft: Draft | None


async def _shown(
    session: AsyncSession, entry_id: int, chat: Chat | None, draft: Draft | None
) -> Shown:
    if draft is not None:
        return Shown(
            draft.base_revision,
            _state_selection(draft.form_state),
            _new_items(draft.form_state),
            draft,
        )
    bundles = BundleRepository(session)
    revision = (
        await bundles.revision_at(entry_id, chat.created_at)
        if chat is not None
        else await bundles.current_revision(entry_id)
    )
    return Shown(revision, await bundles.selection(entry_id, revision), {}, None)


def _item(resource: Resource | Row[Any], position: int | None) -> ItemView:
    """A library item (a resource, or a row of one) as a section shows it: selected when it has
    a place among the selected items."""
    return ItemView(
        id=resource.id,
        kind=resource.kind,
        name=resource.name,
        description=resource.description,
        data=resource.data,
        selected=position is not None,
        position=position,
    )


async def hydrate(
    session: AsyncSession, auth: AuthContext, query: HydrateQuery, cache: TagCache
) -> Hydrated:
    """The sections of the entry's current bundle, of the bundle an attempt started with, or of
    a draft: per kind the selected items (in order; a draft's new items last) and the library
    items matching the section's search. Cached per caller until something shown changes."""
    workspace_id = auth.workspace_id
    # Outside the cache: an entry deleted through another face disappears at once.
    await assistant_service.ensure_assistant(session, workspace_id, query.entry_id)
    tags = [
        ANALYTICS_TAG,
        workspace_tag(workspace_id),
        library_tag(workspace_id),
        entry_tag(workspace_id, query.entry_id),
    ]
    if query.draft_id:
        tags.append(draft_tag(query.draft_id))
    viewer = "admin" if auth.is_admin else f"principal-{auth.principal_id}"
    key = f"hydrate:{workspace_id}:{viewer}:{query.cache_key()}"
    cached, ticket = await cache.lookup(key, tags)
    if cached is not None:
        return Hydrated.model_validate(cached)
    hydrated = await _hydrate(session, auth, query)
    await cache.store(ticket, hydrated.model_dump(mode="json"))
    return hydrated


async def _hydrate(session: AsyncSession, auth: AuthContext, query: HydrateQuery) -> Hydrated:
    workspace_id, entry_id = auth.workspace_id, query.entry_id
    chat = await _attempt(session, auth, entry_id, query.attempt) if query.attempt else None
    draft = await _draft(session, auth, query.draft_id, entry_id) if query.draft_id else None
    shown = await _shown(session, entry_id, chat, draft)
    revision, selection, new_items = shown.revision, shown.selection, shown.new_items
    resources = ResourceRepository(session)
    loaded = await resources.by_ids(workspace_id, (i for ids in selection.values() for i in ids))
    available_rows = await resources.available(workspace_id, query.sections, selection, query.limit)
    available: dict[ResourceKind, list[ItemView]] = {}
    totals: dict[ResourceKind, int] = {}
    for row in available_rows:
        chosen = selection.get(row.kind) or []
        position = chosen.index(row.id) if row.id in chosen else None
        available.setdefault(row.kind, []).append(_item(row, position))
        totals[row.kind] = int(row.total)
    sections: dict[ResourceKind, SectionView] = {}
    for section in query.sections:
        kind = section.kind
        ids = [i for i in selection.get(kind, []) if i in loaded]
        selected = [_item(loaded[i], position) for position, i in enumerate(ids)]
        selected += [
            ItemView(
                id=None,
                kind=kind,
                name=name,
                description=description,
                data=data,
                selected=True,
                position=len(ids) + n,
                new=True,
            )
            for n, (name, description, data) in enumerate(new_items.get(kind, []))
        ]
        sections[kind] = SectionView(
            kind=kind,
            search=section.search,
            show_selected=section.show_selected,
            selected=selected,
            available=available.get(kind, []),
            available_total=totals.get(kind, 0),
        )
    return Hydrated(
        chat_entry_id=str(entry_id),
        attempt_id=str(chat.id) if chat is not None else None,
        draft_id=draft.id if draft is not None else None,
        group_id=group_id(entry_id, revision),
        revision=revision,
        draft_version=draft.version if draft is not None else None,
        sections=sections,
        statistics=await analytics.statistics(
            session, workspace_id, entry_id, chat.id if chat is not None else None
        ),
    )


# --- drafts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """An accepted draft change: the draft, its new version and state, and, when it was
    published, the bundle revision it became (the draft is then gone)."""

    draft_id: str
    entry_id: int
    version: int
    form_state: dict[str, Any]
    created: bool
    #: the bundle revision the draft started from
    base_revision: int
    published_revision: int | None = None


#: value fields holding one text (cleared to null; the others are lists, cleared to [])
TEXT_VALUE_FIELDS = frozenset(
    spec.value_field for spec in KINDS if spec.value_field and spec.value_shape == "text"
)


def _changes(patch: BaseModel) -> dict[str, Any]:
    return {name: getattr(patch, name) for name in PATCHABLE if name in patch.model_fields_set}


def _apply(state: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    values = dict(state)
    for name, value in changes.items():
        if value is None:
            values[name] = None if name in TEXT_VALUE_FIELDS else []
        elif isinstance(value, list):
            values[name] = [
                v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value
            ]
        else:
            values[name] = value
    return FormState.model_validate(values).model_dump(mode="json")


async def _check_ids(
    session: AsyncSession, workspace_id: int, state: dict[str, Any], fields: set[str]
) -> None:
    """Every selected id of the changed `<kind>_ids` fields names a library item of that kind."""
    wanted = {
        spec.kind: state.get(spec.ids_field) or [] for spec in KINDS if spec.ids_field in fields
    }
    found = await ResourceRepository(session).by_ids(
        workspace_id, (i for ids in wanted.values() for i in ids)
    )
    errors = []
    for kind, ids in wanted.items():
        for index, resource_id in enumerate(ids):
            resource = found.get(resource_id)
            where = f"{SPECS[kind].ids_field}[{index}]"
            if resource is None:
                errors.append(FieldError(where, f"no library item {resource_id} in this workspace"))
            elif resource.kind != kind:
                errors.append(
                    FieldError(
                        where, f"{resource_id} is a {resource.kind.value}, not a {kind.value}"
                    )
                )
    if errors:
        raise Invalid(
            "Unknown resources: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
            code="unknown_resource",
            errors=errors,
        )


async def patch_draft(
    session: AsyncSession, auth: AuthContext, patch: BaseModel, cache: TagCache
) -> DraftOutcome:
    """Create or change a draft, against the version the caller last saw (`expected_version`,
    0 for a draft it does not have yet); with `publish`, make it the entry's next bundle revision.
    A stale version raises VersionConflict with the current one, and nothing is written."""
    data: Any = patch
    if data.publish:
        auth.require_admin("publish a draft")
    drafts = DraftRepository(session)
    if data.input_draft_id is not None:
        entry_id = int(data.chat_entry_id) if data.chat_entry_id is not None else None
        draft: Draft | None = await _draft(
            session, auth, data.input_draft_id, entry_id, field="input_draft_id"
        )
        assert draft is not None
        entry_id = draft.assistant_id
    elif data.chat_entry_id is None:
        raise Invalid(
            "Name the draft (input_draft_id) or the chat entry (chat_entry_id).",
            errors=[FieldError("chat_entry_id", "required without input_draft_id")],
        )
    else:
        entry_id = int(data.chat_entry_id)
        draft = None
    await assistant_service.ensure_assistant(session, auth.workspace_id, entry_id)
    if draft is None:
        draft = await drafts.of_owner(auth.principal_id, entry_id)
    changes = _changes(patch)
    expected = int(data.expected_version)
    created = draft is None
    if draft is None:
        draft = await _create_draft(session, auth, entry_id, expected, changes)
        draft_id, version, state = draft.id, draft.version, draft.form_state
        base_revision = draft.base_revision
    else:
        base_revision = draft.base_revision
        if draft.version != expected:
            raise VersionConflict(draft.version, draft.id)
        draft_id = draft.id
        state = _apply(draft.form_state, changes)
        await _check_ids(session, auth.workspace_id, state, set(changes))
        advanced = await drafts.advance(draft_id, expected, state)
        if advanced is None:
            current = await drafts.version(draft_id)
            if current is None:
                raise NotFound(
                    f"Draft {draft_id} was published or removed meanwhile.", code="draft_not_found"
                )
            raise VersionConflict(current, draft_id)
        version = advanced
    tags = [draft_tag(draft_id)]
    revision = None
    if data.publish:
        revision, state = await _publish(session, auth, entry_id, draft_id, state)
        tags += [entry_tag(auth.workspace_id, entry_id), library_tag(auth.workspace_id)]
    # After every savepoint of this transaction (see TagCache.invalidate_with).
    await cache.invalidate_with(session, tags)
    return DraftOutcome(draft_id, entry_id, version, state, created, base_revision, revision)


async def _create_draft(
    session: AsyncSession,
    auth: AuthContext,
    entry_id: int,
    expected: int,
    changes: dict[str, Any],
) -> Draft:
    """The caller's first draft of the entry, starting from its current bundle. Of concurrent
    creations one wins (a unique key per owner and entry); the others see its version."""
    if expected != 0:
        raise VersionConflict(0, None)
    bundles = BundleRepository(session)
    revision = await bundles.current_revision(entry_id)
    state = empty_form_state(entry_id, revision)
    for kind, ids in (await bundles.selection(entry_id, revision)).items():
        state[SPECS[kind].ids_field] = ids
    state = _apply(state, changes)
    await _check_ids(session, auth.workspace_id, state, set(changes))
    draft = Draft(
        id=new_uuid(),
        workspace_id=auth.workspace_id,
        assistant_id=entry_id,
        principal_id=auth.principal_id,
        version=1,
        base_revision=revision,
        form_state=state,
    )
    try:
        async with session.begin_nested():
            session.add(draft)
            await session.flush()
    except IntegrityError:
        current = await DraftRepository(session).of_owner(auth.principal_id, entry_id)
        if current is None:
            raise
        raise VersionConflict(current.version, current.id) from None
    return draft


async def _publish(
    session: AsyncSession, auth: AuthContext, entry_id: int, draft_id: str, state: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The draft as the entry's next bundle revision: its new items join the library, its
    selection becomes the bundle, and the draft is removed. Returns the revision and the state
    of the published bundle (all selections as ids, no new items left)."""
    selection = _state_selection(state)
    await _check_ids(session, auth.workspace_id, state, {spec.ids_field for spec in KINDS})
    resources = ResourceRepository(session)
    for kind, items in _new_items(state).items():
        for name, description, data in items:
            resource = Resource(
                id=new_uuid(),
                workspace_id=auth.workspace_id,
                kind=kind,
                name=name,
                description=description,
                data=validate_data(kind, data),
                created_by=auth.principal_id,
            )
            await resources.add(resource)
            selection[kind].append(resource.id)
    bundles = BundleRepository(session)
    revision = await bundles.current_revision(entry_id) + 1
    bundle = Bundle(
        workspace_id=auth.workspace_id,
        assistant_id=entry_id,
        revision=revision,
        draft_id=draft_id,
        published_by=auth.principal_id,
    )
    try:
        async with session.begin_nested():
            session.add(bundle)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"Chat entry {entry_id} was published by someone else at the same moment "
            f"(revision {revision}); send the change again.",
            code="publish_conflict",
        ) from None
    await bundles.attach(bundle.id, {kind: ids for kind, ids in selection.items() if ids})
    await DraftRepository(session).remove(draft_id)
    published = empty_form_state(entry_id, revision)
    for kind, ids in selection.items():
        published[SPECS[kind].ids_field] = ids
    return revision, published


async def list_drafts(session: AsyncSession, auth: AuthContext, params: PageParams) -> Page[Draft]:
    """The caller's own drafts (of entries not deleted), most recently changed first."""
    return await DraftRepository(session).list_of_owner(
        auth.workspace_id, auth.principal_id, params
    )


# --- export --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    job_id: int
    chat_id: int
    file_name: str
    row_count: int


#: the bundle columns added to every row of a chat export, after the export's own columns
BUNDLE_COLUMN = "Bundle"


def _kind_header(kind: ResourceKind) -> str:
    return SPECS[kind].plural.replace("_", " ").capitalize()


async def bundle_columns(
    session: AsyncSession,
    auth: AuthContext,
    entry_id: int,
    chat: Chat,
    draft_id: str | None,
) -> list[tuple[str, str]]:
    """(header, value) of the columns that put the chat's bundle on every row: the group id,
    then per kind the JSON array of the selected items' names (a draft's new items included)."""
    draft = await _draft(session, auth, draft_id, entry_id) if draft_id is not None else None
    shown = await _shown(session, entry_id, chat, draft)
    group = group_id(entry_id, shown.revision)
    if draft is not None:
        group += f" draft {draft.id} v{draft.version}"
    loaded = await ResourceRepository(session).by_ids(
        auth.workspace_id, (i for ids in shown.selection.values() for i in ids)
    )
    columns = [(BUNDLE_COLUMN, group)]
    for spec in KINDS:
        names = [loaded[i].name for i in shown.selection.get(spec.kind, []) if i in loaded]
        names += [name for name, _d, _data in shown.new_items.get(spec.kind, [])]
        columns.append((_kind_header(spec.kind), json.dumps(names, ensure_ascii=False)))
    return columns


async def export_chat(
    session: AsyncSession,
    auth: AuthContext,
    jobs: job_runner.JobContext,
    entry_id: int,
    attempt: str | None,
    draft_id: str | None,
) -> ExportOutcome:
    """One chat of the entry (the caller's newest when no attempt is named) as CSV: the export
    job's columns for each visible message, plus the bundle columns. The job is created and run
    here, so the answer carries the file and its row count; the job stays readable at
    /jobs/{id}/ and its file downloadable at /jobs/{id}/artifact/."""
    await assistant_service.ensure_assistant(session, auth.workspace_id, entry_id)
    chat = await _attempt(session, auth, entry_id, attempt)
    columns = await bundle_columns(session, auth, entry_id, chat, draft_id)
    filters = ExportFilters(workspace_id=auth.workspace_id, chat_id=chat.id, visible_only=True)
    payload = {
        "filters": filters_payload(filters),
        "callback_url": None,
        "extra_columns": [list(column) for column in columns],
    }
    job = await jobs.run_here(auth.workspace_id, EXPORT, payload, created_by=auth.principal_id)
    job_id = job.id
    result = job.result or {}
    if job.state != JobState.SUCCEEDED or "artifact" not in result:
        raise Unavailable(
            f"The export (job {job_id}) did not finish: {job.error or job.state}. "
            f"Follow it at GET /jobs/{job_id}/.",
            code="export_failed",
        )
    return ExportOutcome(job_id, chat.id, str(result["artifact"]), int(result["rows"]))


# --- analytics -----------------------------------------------------------------------------------


async def refresh_analytics(
    session: AsyncSession, auth: AuthContext, cache: TagCache
) -> tuple[list[str], list[str]]:
    """Refresh the chat analytics (admin keys; the relations cover every workspace) and drop the
    cached reads that show them, and the caller's workspace's cached reads. Returns the
    relations refreshed and the tags invalidated."""
    auth.require_admin("refresh the chat analytics")
    views = await analytics.refresh(session)
    tags = await cache.invalidate_with(session, [ANALYTICS_TAG, workspace_tag(auth.workspace_id)])
    return views, tags


# --- documentation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryOverview:
    """A chat entry as documentation describes it: the assistant, its current bundle revision
    and how many items of each kind that revision selects."""

    entry_id: int
    title: str
    info: str
    revision: int
    counts: dict[ResourceKind, int]


async def entry_overview(session: AsyncSession, auth: AuthContext, entry_id: int) -> EntryOverview:
    assistant = await assistant_service.get_assistant(session, auth.workspace_id, entry_id)
    bundles = BundleRepository(session)
    revision = await bundles.current_revision(entry_id)
    selection = await bundles.selection(entry_id, revision)
    return EntryOverview(
        entry_id=entry_id,
        title=assistant.description,
        info=assistant.info or "",
        revision=revision,
        counts={spec.kind: len(selection.get(spec.kind, [])) for spec in KINDS},
    )
