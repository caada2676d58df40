"""Routes of the artifacts-v5 face (`/api/v5/artifacts/chat/…`): translation of the seed's
bodies to the artifacts service and back. Rules live in chatsvc.artifacts."""

# No `from __future__ import annotations`: the endpoints annotate with generated classes, which
# FastAPI must see as objects, not strings.

from typing import Annotated, Any

from fastapi import Body, Request, Response
from pydantic import BaseModel

from chatsvc.api.artifacts_v5.deps import CacheDep, FaceAdminDep, FaceAuthDep
from chatsvc.api.artifacts_v5.docs import PREFIX, compose, find
from chatsvc.api.artifacts_v5.schemas import (
    ChatDocsResponse,
    ChatGetRequest,
    ChatGetResponse,
    ChatRefreshResponse,
    DocsField,
    DocsRequest,
    DocsResponse,
    ExportChatRequest,
    ExportChatResponse,
    GetChatDraftResponse,
    GetChatDraftsResponse,
    PatchChatDraftResponse,
    ResourceBody,
    ResourceOut,
    VersionConflictBody,
)
from chatsvc.artifacts import service as artifact_service
from chatsvc.artifacts.kinds import KINDS, SPECS
from chatsvc.artifacts.schemas import DraftPatch, Hydrated, HydrateQuery, ResourceIn, SectionQuery
from chatsvc.kit.errors import NotFound
from chatsvc.kit.validation import MAX_ID
from chatsvc.kit.web import PageDep, SlashRouter, error_responses, invalid_is_400, set_list_headers
from chatsvc.services import JobsDep, ReadSessionDep, SessionDep

router = SlashRouter(prefix=PREFIX, tags=["artifacts-v5"])
NOT_FOUND = error_responses(
    {404: "The chat entry, attempt or draft is not in this workspace (or not yours)."}
)


# --- POST /get -----------------------------------------------------------------------------------


def _query(body: Any) -> HydrateQuery:
    sections = tuple(
        SectionQuery(
            kind=spec.kind,
            search=getattr(body, f"{spec.kind.value}_search") or None,
            show_selected=bool(getattr(body, f"{spec.kind.value}_show_selected")),
        )
        for spec in KINDS
    )
    return HydrateQuery(
        entry_id=int(body.chat_entry_id),
        attempt=body.attempt_id,
        draft_id=body.draft_id,
        sections=sections,
        limit=body.limit,
    )


def _get_out(hydrated: Hydrated) -> BaseModel:
    out: dict[str, Any] = {
        "chat_entry_id": hydrated.chat_entry_id,
        "attempt_id": hydrated.attempt_id,
        "group_id": hydrated.group_id,
        "draft_version": hydrated.draft_version,
        "draft_id": hydrated.draft_id,
        "revision": hydrated.revision,
        "statistics": hydrated.statistics,
    }
    for kind, section in hydrated.sections.items():
        # a section of the domain's shape, read again as this kind's wire section
        out[SPECS[kind].plural] = section.model_dump(mode="json")
    return ChatGetResponse.model_validate(out)


@router.post(
    "/get",
    response_model=ChatGetResponse,
    name="artifacts_chat_get",
    summary="Chat Get",
    description="Get hydrated resources for chat bundle customization: per kind, the items the "
    "bundle selects and the library items matching the section's *_search. The entry's current "
    "bundle by default; with attempt_id the bundle that attempt started with; with draft_id the "
    "draft (its new items included, `draft_version` set).",
    responses={**NOT_FOUND},
)
@invalid_is_400
async def chat_get(
    body: ChatGetRequest,
    session: SessionDep,
    auth: FaceAuthDep,
    cache: CacheDep,
) -> BaseModel:
    hydrated = await artifact_service.hydrate(session, auth, _query(body), cache)
    return _get_out(hydrated)


# --- PATCH /draft, POST /drafts ------------------------------------------------------------------


def _message(outcome: artifact_service.DraftOutcome) -> str:
    revision = outcome.published_revision
    if revision is not None:
        replaced = (
            f" (it started from revision {outcome.base_revision}; what was published since is "
            "replaced)"
            if revision != outcome.base_revision + 1
            else ""
        )
        return (
            f"Draft published as revision {revision} of chat entry {outcome.entry_id}"
            f"{replaced}; the draft is removed."
        )
    if outcome.created:
        return f"Draft created at version {outcome.version}."
    return f"Draft saved at version {outcome.version}."


@router.patch(
    "/draft",
    response_model=PatchChatDraftResponse,
    name="artifacts_patch_chat_draft",
    summary="Patch Chat Draft",
    description="Create or change the caller's draft of a chat entry (or the draft named by "
    "input_draft_id), against `expected_version`: 0 when the caller has no draft of the entry, "
    "else the draft's current version. Only the fields sent change. With `publish: true` (admin "
    "keys) the draft becomes the entry's next bundle revision.",
    responses={
        **NOT_FOUND,
        409: {
            "model": VersionConflictBody,
            "description": "expected_version is not the draft's current version (given in "
            "current_version); nothing was changed.",
        },
    },
)
@invalid_is_400
async def patch_chat_draft(
    body: DraftPatch,
    session: SessionDep,
    auth: FaceAuthDep,
    cache: CacheDep,
) -> PatchChatDraftResponse:
    outcome = await artifact_service.patch_draft(session, auth, body, cache)
    return PatchChatDraftResponse(
        success=True,
        draft_id=outcome.draft_id,
        new_version=outcome.version,
        message=_message(outcome),
        form_state=outcome.form_state,
        published_revision=outcome.published_revision,
    )


@router.post(
    "/drafts",
    response_model=GetChatDraftsResponse,
    name="artifacts_get_chat_drafts",
    summary="Get Chat Drafts",
    description="List chat drafts owned by the current profile (the caller's key's principal), "
    "most recently changed first; paginated by page/page_size, the total in X-Total-Count.",
)
async def get_chat_drafts(
    request: Request,
    response: Response,
    session: SessionDep,
    auth: FaceAuthDep,
    page: PageDep,
) -> GetChatDraftsResponse:
    found = await artifact_service.list_drafts(session, auth, page)
    set_list_headers(request, response, found)
    return GetChatDraftsResponse(
        entries=[
            GetChatDraftResponse(
                draft_id=draft.id,
                chat_entry_id=str(draft.assistant_id),
                version=draft.version,
                base_revision=draft.base_revision,
                form_state=draft.form_state,
                created_at=draft.created_at,
                updated_at=draft.updated_at,
            )
            for draft in found.items
        ]
    )


# --- POST /export, /refresh ----------------------------------------------------------------------


@router.post(
    "/export",
    response_model=ExportChatResponse,
    name="artifacts_export_chat",
    summary="Export Chat",
    description="Export a single chat as a clean, denormalized CSV: one row per visible message "
    "with its chat, entry, user and sender, and the chat's bundle (per kind, the selected items' "
    "names) on every row. Runs as an export job before answering; download the file at "
    "download_url (GET /jobs/{id}/artifact/).",
    responses={
        **NOT_FOUND,
        **error_responses({503: "The export job failed; it is retried."}),
    },
)
@invalid_is_400
async def export_chat(
    request: Request,
    body: ExportChatRequest,
    session: ReadSessionDep,  # reads only: the job runs in units of work of its own
    auth: FaceAuthDep,
    jobs: JobsDep,
) -> ExportChatResponse:
    outcome = await artifact_service.export_chat(
        session,
        auth,
        jobs,
        int(body.chat_entry_id),
        body.attempt_id,
        body.draft_id,
    )
    return ExportChatResponse(
        upload_id=str(outcome.job_id),
        file_name=outcome.file_name,
        row_count=outcome.row_count,
        downloadable=True,
        download_url=str(request.url_for("get_job_artifact", id=outcome.job_id)),
        attempt_id=str(outcome.chat_id),
    )


@router.post(
    "/refresh",
    response_model=ChatRefreshResponse,
    name="artifacts_chat_refresh",
    summary="Chat Refresh",
    description="Refresh chat materialized views (per-assistant and per-chat statistics; of "
    "every workspace) and invalidate cached reads. Admin keys.",
)
async def chat_refresh(
    session: SessionDep, auth: FaceAdminDep, cache: CacheDep
) -> ChatRefreshResponse:
    views, tags = await artifact_service.refresh_analytics(session, auth, cache)
    return ChatRefreshResponse(success=True, refreshed_views=views, invalidated_tags=tags)


# --- POST /docs ----------------------------------------------------------------------------------


@router.post(
    "/docs",
    response_model=ChatDocsResponse,
    name="artifacts_get_chat_docs",
    summary="Get Chat Docs Endpoint",
    description="Get composed documentation for the chat analytics: entities (from the models), "
    "resource kinds (from the kind registry), permissions (from each route's dependencies) and "
    "api_operations (from this service's OpenAPI document). `entity_id` picks one into "
    "`artifact`: an entity or kind id, or a chat entry's id.",
    responses=error_responses({404: "No entity, kind or chat entry with that id."}),
)
@invalid_is_400
async def get_chat_docs(
    request: Request,
    session: SessionDep,
    auth: FaceAuthDep,
    body: Annotated[DocsRequest | None, Body()] = None,
) -> ChatDocsResponse:
    docs = compose(request.app, router.routes)
    entity_id = body.entity_id if body is not None else None
    if entity_id is None:
        return docs
    artifact = find(docs, entity_id)
    if artifact is None and entity_id.isdigit() and 1 <= int(entity_id) <= MAX_ID:
        try:
            overview = await artifact_service.entry_overview(session, auth, int(entity_id))
        except NotFound:
            overview = None
        if overview is not None:
            artifact = DocsResponse(
                id=str(overview.entry_id),
                name=overview.title,
                type="chat entry",
                description=overview.info,
                fields=[
                    DocsField(
                        name=SPECS[kind].plural,
                        type="integer",
                        required=True,
                        description=f"{count} selected in bundle revision {overview.revision}",
                    )
                    for kind, count in overview.counts.items()
                ],
            )
    if artifact is None:
        known = ", ".join(d.id for d in [*docs.entries, *docs.resources])
        raise NotFound(
            f"No entity, kind or chat entry {entity_id!r}; entities and kinds: {known}.",
            code="unknown_entity",
        )
    docs.artifact = artifact
    return docs


# --- the library (not in the seed) ---------------------------------------------------------------


@router.post(
    "/resources",
    response_model=ResourceOut,
    status_code=201,
    name="artifacts_create_resource",
    summary="Add an item to the resource library",
    description="Not in the seed: how library items of every kind are made (a draft adds names, "
    "descriptions, problem statements, objectives, images, videos, questions and options when "
    "published). The body is told apart by `kind`; `data` is the kind's schema. Admin keys.",
)
@invalid_is_400
async def create_resource(
    body: ResourceBody,
    session: SessionDep,
    auth: FaceAdminDep,
    cache: CacheDep,
) -> ResourceOut:
    data = ResourceIn(
        kind=body.kind,
        name=body.name,
        description=body.description,
        data=body.data.model_dump(mode="json"),
    )
    resource = await artifact_service.create_resource(session, auth, data, cache)
    return ResourceOut.model_validate(resource, from_attributes=True)
