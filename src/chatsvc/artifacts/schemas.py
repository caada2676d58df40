"""Validated inputs and read models of the chat artifacts, generated from the kind registry: a
draft's form state and patch have one `<kind>_ids` list per kind and one value field per kind that
a draft can add as text or objects; a hydrated read has one section per kind."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model

from chatsvc.artifacts.kinds import (
    IDS_SPECS,
    NAME_MAX,
    TEXT_MAX,
    VALUE_MODELS,
    VALUE_SPECS,
    KindSpec,
    ResourceKind,
)
from chatsvc.kit.validation import MAX_ID, InputModel

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_IDS = 200
MAX_VALUES = 100


def _lower(value: str) -> str:
    return value.lower()


def _entry_id(value: str) -> str:
    if int(value) > MAX_ID:
        raise ValueError(f"must be at most {MAX_ID}")
    return value


def _distinct(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value} appears more than once")
        seen.add(value)
    return values


EntryId = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]{0,18}$"),
    AfterValidator(_entry_id),
    Field(description="The chat entry: an assistant's id, as a string.", examples=["12"]),
]
AttemptId = Annotated[
    str,
    StringConstraints(pattern=r"^(?:[1-9][0-9]{0,18}|" + UUID_PATTERN[1:-1] + r")$"),
    Field(description="An attempt: a chat of the entry, by its id or its uuid.", examples=["34"]),
]
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN), AfterValidator(_lower)]
ResourceId = Annotated[str, StringConstraints(pattern=UUID_PATTERN), AfterValidator(_lower)]
ResourceIds = Annotated[
    list[ResourceId], Field(max_length=MAX_IDS), AfterValidator(_distinct)
]  # fmt: skip
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX)]
Texts = Annotated[list[Text], Field(max_length=MAX_VALUES)]


def _value_type(spec: KindSpec) -> Any:
    if spec.value_shape == "text":
        return Text
    if spec.value_shape == "texts":
        return Texts
    model: Any = VALUE_MODELS[spec.kind]
    return Annotated[list[model], Field(max_length=MAX_VALUES)]


def _kind_label(spec: KindSpec) -> str:
    return spec.kind.value.replace("_", " ")


# --- drafts --------------------------------------------------------------------------------------


#: a field of a model made with create_model: its type and its FieldInfo
FieldDef = tuple[Any, Any]


def _per_kind(
    new_items: Callable[[KindSpec], FieldDef], selected: Callable[[KindSpec], FieldDef]
) -> dict[str, FieldDef]:
    """The fields a draft has per kind, in their order: for each kind that takes new items its
    value_field, then for each kind its ids_field (the selected library items), as `new_items`
    and `selected` declare them."""
    fields = {
        spec.value_field: new_items(spec) for spec in VALUE_SPECS if spec.value_field is not None
    }
    fields.update({spec.ids_field: selected(spec) for spec in IDS_SPECS})
    return fields


def _form_state_fields() -> dict[str, Any]:
    def new_items(spec: KindSpec) -> FieldDef:
        text = spec.value_shape == "text"  # one text, null when none; else a list
        return (
            _value_type(spec) | None if text else _value_type(spec),
            Field(
                default=None if text else [],
                description=f"New {_kind_label(spec)} items, added to the library and "
                "selected when the draft is published.",
            ),
        )

    def selected(spec: KindSpec) -> FieldDef:
        return (
            ResourceIds,
            Field(
                default_factory=list,
                description=f"The selected library items of kind {spec.kind.value}, in order.",
            ),
        )

    return {
        "chat_entry_id": (str, Field(description="The chat entry the draft changes.")),
        "base_revision": (
            int,
            Field(description="The published bundle revision the draft started from (0: none)."),
        ),
        **_per_kind(new_items, selected),
    }


class _FormStateBase(InputModel):
    # Validated like input (stored JSON, a patch's result), always sent whole: the OpenAPI
    # document lists its defaulted fields as required in responses.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


FormState: type[BaseModel] = create_model(
    "ChatDraftFormState",
    __base__=_FormStateBase,
    __doc__="Everything a draft holds: the selection per kind and the new items to add.",
    **_form_state_fields(),
)


def _patch_fields() -> dict[str, Any]:
    def new_items(spec: KindSpec) -> FieldDef:
        return (
            _value_type(spec) | None,
            Field(
                default=None,
                description=f"Replaces the draft's new {_kind_label(spec)} items; null "
                "clears them; omitted leaves them as they are.",
            ),
        )

    def selected(spec: KindSpec) -> FieldDef:
        return (
            ResourceIds | None,
            Field(
                default=None,
                description=f"Replaces the selected {_kind_label(spec)} items (library ids, in "
                "order); null or [] selects none; omitted leaves the selection as it is.",
            ),
        )

    return {
        "input_draft_id": (
            Uuid | None,
            Field(
                default=None,
                description="The draft to change. Without it: the caller's draft of "
                "chat_entry_id, created when it has none.",
            ),
        ),
        "chat_entry_id": (
            EntryId | None,
            Field(default=None, description="The entry; required without input_draft_id."),
        ),
        "expected_version": (
            Annotated[int, Field(ge=0, le=2**31 - 1)],
            Field(
                default=0,
                description="The draft's version this change was made against: 0 when the "
                "caller has no draft of the entry yet. Any other value than the current version "
                "is refused with 409 and the current version.",
            ),
        ),
        **_per_kind(new_items, selected),
        "publish": (
            bool,
            Field(
                default=False,
                description="After applying this change, publish the draft onto the entry as its "
                "next bundle revision and remove the draft (admin keys only).",
            ),
        ),
    }


DraftPatch: type[InputModel] = create_model(
    "PatchChatDraftRequest",
    __base__=InputModel,
    __doc__="A change of a draft: only the fields sent change.",
    **_patch_fields(),
)

#: the form-state fields a patch may change
PATCHABLE: tuple[str, ...] = tuple(
    [spec.value_field for spec in VALUE_SPECS if spec.value_field is not None]
    + [spec.ids_field for spec in IDS_SPECS]
)


def empty_form_state(entry_id: int, base_revision: int) -> dict[str, Any]:
    state = FormState.model_validate(
        {"chat_entry_id": str(entry_id), "base_revision": base_revision}
    )
    return state.model_dump(mode="json")


# --- resources -----------------------------------------------------------------------------------


class ResourceIn(InputModel):
    """A new library item: its kind, name, description and the kind's data."""

    kind: ResourceKind
    name: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)]
    description: Annotated[str, StringConstraints(max_length=TEXT_MAX)] = ""
    data: dict[str, Any] = Field(
        default_factory=dict, description="The kind's data (see each kind's schema)."
    )


# --- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SectionQuery:
    """How one section is read: items matching `search` (case-insensitive, in the name or the
    description), selected ones listed among the available ones only with `show_selected`."""

    kind: ResourceKind
    search: str | None = None
    show_selected: bool = False


@dataclass(frozen=True, slots=True)
class HydrateQuery:
    entry_id: int
    attempt: str | None = None
    draft_id: str | None = None
    sections: tuple[SectionQuery, ...] = ()
    limit: int = 50

    def cache_key(self) -> str:
        """A fixed-size digest of everything the read depends on besides the caller."""
        parts = [
            self.entry_id,
            self.attempt,
            self.draft_id,
            self.limit,
            sorted((q.kind.value, q.search, q.show_selected) for q in self.sections),
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class ItemView(BaseModel):
    """A library item as a section shows it."""

    id: str | None = Field(description="Its library id; null for a draft's new item.")
    kind: ResourceKind
    name: str
    description: str
    data: dict[str, Any]
    selected: bool = Field(description="Whether the bundle (or draft) selects it.")
    position: int | None = Field(description="Its place among the selected items, from 0.")
    new: bool = Field(
        default=False, description="A draft's new item, added to the library on publish."
    )


class SectionView(BaseModel):
    kind: ResourceKind
    search: str | None
    show_selected: bool
    selected: list[ItemView]
    available: list[ItemView]
    available_total: int


class EntryStats(BaseModel):
    """Counts over every chat of the entry (all attempts)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    chat_count: int = 0
    message_count: int = 0
    user_message_count: int = 0
    assistant_message_count: int = 0
    liked_chat_count: int = 0
    disliked_chat_count: int = 0
    last_message_at: datetime | None = None


class AttemptStats(BaseModel):
    """Counts over the chats of one attempt."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    message_count: int = 0
    user_message_count: int = 0
    assistant_message_count: int = 0
    first_message_at: datetime | None = None
    last_message_at: datetime | None = None


class Statistics(BaseModel):
    """Counts of the chats of a chat entry and of an attempt."""

    entry: EntryStats
    attempt: AttemptStats | None
    refreshed_at: datetime | None


class Hydrated(BaseModel):
    """The sections of an entry, an attempt or a draft, as cached and answered."""

    chat_entry_id: str
    attempt_id: str | None
    draft_id: str | None
    group_id: str
    revision: int
    draft_version: int | None
    sections: dict[ResourceKind, SectionView]
    statistics: Statistics
