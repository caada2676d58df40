"""Wire schemas of the artifacts-v5 face (seed 000, docs/seeds/): snake_case, string ids. The
per-kind models (Chat<Kind>Section, Chat<Kind>Item, <Kind>ResourceIn) and the per-kind request
fields (`<kind>_search`, `<kind>_show_selected`) are generated from the kind registry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    create_model,
)

from chatsvc.artifacts.kinds import KINDS, NAME_MAX, TEXT_MAX, KindSpec, ResourceKind
from chatsvc.artifacts.schemas import (
    AttemptId,
    EntryId,
    FormState,
    Statistics,
    Uuid,
)
from chatsvc.kit.validation import InputModel
from chatsvc.kit.web import ErrorBody

Search = Annotated[str, StringConstraints(max_length=255)]

# --- sections ------------------------------------------------------------------------------------


class ItemBase(BaseModel):
    id: str | None = Field(description="Its library id; null for a draft's new item.")
    name: str
    description: str
    selected: bool = Field(description="Whether the bundle (or the draft) selects it.")
    position: int | None = Field(
        description="Its place among the selected items of its kind, from 0; null when not "
        "selected."
    )
    new: bool = Field(description="A draft's new item: added to the library when published.")


class SectionBase(BaseModel):
    search: str | None = Field(description="The section's *_search string, as applied.")
    show_selected: bool = Field(
        description="Whether selected items are listed among the available ones too."
    )
    available_total: int = Field(description="Library items matching the search in all.")


def _literal(value: str) -> Any:
    """Literal[value] for a value known only at run time (the kind of a generated model)."""
    return Literal.__getitem__(value)


def _section_models(spec: KindSpec) -> type[BaseModel]:
    item = create_model(
        f"Chat{spec.title}Item",
        __base__=ItemBase,
        __doc__=f"One {spec.kind.value.replace('_', ' ')} of the library, as a section lists it "
        "(selected or available, with its position and data).",
        kind=(_literal(spec.kind.value), ...),
        data=(spec.data, Field(description=spec.description)),
    )
    return create_model(
        f"Chat{spec.title}Section",
        __base__=SectionBase,
        __doc__=f"The {spec.plural.replace('_', ' ')} of the bundle: `selected` in order (a "
        "draft's new items last), `available` the library items matching the search (by name, "
        "at most `limit`).",
        kind=(_literal(spec.kind.value), ...),
        selected=(list[item], ...),
        available=(list[item], ...),
    )


SECTIONS: dict[ResourceKind, type[BaseModel]] = {spec.kind: _section_models(spec) for spec in KINDS}


def _get_request_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "chat_entry_id": (EntryId, ...),
        "attempt_id": (
            AttemptId | None,
            Field(default=None, description="Read the bundle this attempt started with."),
        ),
        "draft_id": (
            Uuid | None,
            Field(default=None, description="Read a draft of the entry instead."),
        ),
    }
    # How each section is listed, by option (every kind's *_search, then every *_show_selected);
    # {} is the kind's plural.
    options = (
        (
            "search",
            Search,
            "Lists the {} whose name or description contains it (case-insensitive).",
        ),
        (
            "show_selected",
            bool,
            "true: selected {} are listed among the available ones too; false or null: only "
            "those not selected.",
        ),
    )
    for option, annotation, description in options:
        for spec in KINDS:
            fields[f"{spec.kind.value}_{option}"] = (
                annotation | None,
                Field(default=None, description=description.format(spec.plural.replace("_", " "))),
            )
    fields["limit"] = (
        Annotated[int, Field(ge=1, le=200)],
        Field(default=50, description="At most this many available items per section."),
    )
    return fields


ChatGetRequest: type[InputModel] = create_model(
    "ChatGetRequest",
    __base__=InputModel,
    __doc__="Which bundle to read (an entry's, an attempt's or a draft's) and how to list each "
    "section. A *_search or *_show_selected is accepted for every kind.",
    **_get_request_fields(),
)


def _get_response_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "chat_entry_id": (str, ...),
        "attempt_id": (str | None, Field(default=None)),
        "group_id": (
            str,
            Field(
                description="The bundle shown: `<chat_entry_id>:<revision>` (revision 0: nothing "
                "published yet). A draft shows the revision it started from."
            ),
        ),
        "draft_version": (int | None, Field(default=None)),
    }
    for spec in KINDS:
        fields[spec.plural] = (SECTIONS[spec.kind] | None, Field(default=None))
    fields["draft_id"] = (str | None, Field(default=None, description="The draft shown."))
    fields["revision"] = (int, Field(description="The bundle revision shown."))
    fields["statistics"] = (
        Statistics,
        Field(description="The entry's (and the attempt's) chat analytics, as of refreshed_at."),
    )
    return fields


ChatGetResponse: type[BaseModel] = create_model(
    "ChatGetResponse", __doc__="The hydrated sections.", **_get_response_fields()
)


# --- drafts --------------------------------------------------------------------------------------


class PatchChatDraftResponse(BaseModel):
    """The draft after a change: its new version, and the published revision when published."""

    success: bool
    draft_id: str
    new_version: int = Field(description="The draft's version after this change.")
    message: str
    form_state: FormState | None = None
    published_revision: int | None = Field(
        default=None,
        description="With publish: the bundle revision the draft became (the draft is removed).",
    )


class GetChatDraftResponse(BaseModel):
    """A draft of a chat entry's bundle, with its version (optimistic concurrency)."""

    draft_id: str
    chat_entry_id: str
    version: int
    base_revision: int
    form_state: FormState
    created_at: datetime
    updated_at: datetime


class GetChatDraftsResponse(BaseModel):
    """The drafts of a chat entry."""

    entries: list[GetChatDraftResponse] | None = None


class VersionConflictBody(ErrorBody):
    """409 of PATCH /draft: the draft's version is not the expected one."""

    current_version: int = Field(description="The draft's current version (0: no draft yet).")
    draft_id: str | None = Field(description="The draft, when there is one.")


# --- export, refresh ------------------------------------------------------------------------------


class ExportChatRequest(InputModel):
    """Which bundle to export as CSV: an entry's, an attempt's or a draft's."""

    chat_entry_id: EntryId
    attempt_id: AttemptId | None = Field(
        default=None, description="The chat to export; default: the caller's newest of the entry."
    )
    draft_id: Uuid | None = Field(
        default=None, description="Put this draft's bundle on the rows instead of the attempt's."
    )


class ExportChatResponse(BaseModel):
    """The CSV export made, and where to download it."""

    upload_id: str = Field(description="The export job's id (GET /jobs/{id}/).")
    file_name: str
    row_count: int = Field(description="Data rows: one per visible message.")
    downloadable: bool = Field(description="Whether the file can be downloaded now.")
    download_url: str = Field(description="GET it with the same key: the CSV file.")
    attempt_id: str = Field(description="The chat exported.")


class ChatRefreshResponse(BaseModel):
    """What a refresh cleared: the views rebuilt and the cache tags dropped."""

    success: bool
    refreshed_views: list[str]
    invalidated_tags: list[str]


# --- docs ----------------------------------------------------------------------------------------


class DocsRequest(InputModel):
    """Which entity, resource kind or chat entry to describe (omitted: the whole face)."""

    entity_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="An entity or kind id from `entries`/`resources` (e.g. `draft`, `persona`), "
        "or a chat entry's id: answered in `artifact`.",
    )


class DocsField(BaseModel):
    """One field of an entity or resource kind."""

    name: str
    type: str
    required: bool
    description: str


class DocsResponse(BaseModel):
    """An entity or resource kind: what it is and its fields."""

    id: str
    name: str
    type: str
    description: str
    fields: list[DocsField] = Field(default_factory=list)


class OperationInfo(BaseModel):
    """One operation of the face, as the OpenAPI document declares it."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    operation_id: str
    method: str
    path: str
    summary: str
    description: str = ""
    roles: list[str] = Field(description="Key roles allowed to call it.")
    success_status: str
    statuses: list[str] = Field(description="Every status the OpenAPI document declares.")
    headers: list[str] = Field(default_factory=list)


class DocsApiResponse(BaseModel):
    """About the document the operations come from: title, versions and counts."""

    title: str
    version: str
    openapi: str
    operation_count: int
    entity_count: int
    kind_count: int


class ChatDocsResponse(BaseModel):
    """The artifacts-v5 face described by its code: entities, resource kinds, operations and


    permissions."""

    name: str
    type: str
    description: str
    artifact: DocsResponse | None = None
    entries: list[DocsResponse]
    resources: list[DocsResponse]
    permissions: list[OperationInfo]
    api_operations: list[OperationInfo]
    page_metadata: DocsApiResponse | None = None


# --- the library ----------------------------------------------------------------------------------


class ResourceOut(BaseModel):
    """A library item of one kind."""

    id: str
    kind: ResourceKind
    name: str
    description: str
    data: dict[str, Any]
    created_at: datetime


def _resource_in(spec: KindSpec) -> type[InputModel]:
    needs_data = any(field.is_required() for field in spec.data.model_fields.values())
    data_field: Any = (
        (spec.data, ...) if needs_data else (spec.data, Field(default_factory=spec.data))
    )
    return create_model(
        f"{spec.title}ResourceIn",
        __base__=InputModel,
        __doc__=f"A new {spec.kind.value.replace('_', ' ')}: {spec.description}",
        kind=(_literal(spec.kind.value), ...),
        name=(Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)], ...),
        description=(Annotated[str, StringConstraints(max_length=TEXT_MAX)], ""),
        data=data_field,
    )


def _kind_of(value: Any) -> str | None:
    found = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return found if isinstance(found, str) else None


_RESOURCE_INS = tuple(Annotated[_resource_in(spec), Tag(spec.kind.value)] for spec in KINDS)
#: one body per kind, told apart by `kind` (a callable discriminator: InputModel's text check
#: runs before every field, which a field discriminator does not allow)
ResourceBody: Any = Annotated[
    Union[_RESOURCE_INS],  # noqa: UP007
    Discriminator(
        _kind_of,
        custom_error_type="invalid_kind",
        custom_error_message="kind must be one of: " + ", ".join(spec.kind.value for spec in KINDS),
    ),
]
