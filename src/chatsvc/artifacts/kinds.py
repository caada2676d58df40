"""The sixteen resource kinds, declared once: each kind's typed data (validated on every write),
its plural (the section and wire name), and how a draft carries new items of it. Everything that
differs between kinds is in `KINDS`; the code that stores, searches, attaches, drafts and exports
resources is written once for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
)

from chatsvc.assistants.schemas import Url
from chatsvc.kit.errors import FieldError, Invalid
from chatsvc.kit.validation import InputModel


class ResourceKind(StrEnum):
    """The kinds of library items a chat bundle is made of."""

    PERSONA = "persona"
    DOCUMENT = "document"
    PROBLEM_STATEMENT = "problem_statement"
    OBJECTIVE = "objective"
    IMAGE = "image"
    VIDEO = "video"
    QUESTION = "question"
    OPTION = "option"
    FIELD = "field"
    PARAMETER_FIELD = "parameter_field"
    PARAMETER = "parameter"
    SCENARIO = "scenario"
    FLAG = "flag"
    DEPARTMENT = "department"
    NAME = "name"
    DESCRIPTION = "description"


ShortText = Annotated[str, StringConstraints(max_length=255)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Key = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"),
    Field(description="An identifier: a letter or _, then letters, digits, _ . - (≤ 64)."),
]
MimeType = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}$")
]
Choices = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=255)]], Field(
    max_length=100
)]  # fmt: skip
FieldType = Literal["text", "long_text", "number", "boolean", "date", "select"]


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("values must be distinct")
    return values


class KindData(InputModel):
    """Base of the typed data of a kind: unknown keys are dropped, text must be storable."""


class PersonaData(KindData):
    """A character: who the assistant plays or whom the user talks to, and how it speaks."""

    role: ShortText = Field(default="", description="What the persona is, e.g. 'customer'.")
    tone: ShortText = Field(default="", description="How it speaks, e.g. 'curt, impatient'.")
    instructions: LongText = Field(default="", description="Guidance added to the prompt.")
    avatar_url: Url | None = Field(default=None, description="An absolute http(s) image URL.")


class DocumentData(KindData):
    """A reference document a chat may draw on: inline text, a link, or both."""

    url: Url | None = Field(default=None, description="Where the document lives.")
    mime_type: MimeType | None = Field(default=None, description="e.g. application/pdf.")
    text: Annotated[str, StringConstraints(max_length=200_000)] = Field(
        default="", description="The document's text, when it is kept inline."
    )


class ProblemStatementData(KindData):
    """The problem a chat works on. Its text is the item's description; it has no other data."""


class ObjectiveData(KindData):
    """What a chat should achieve; the objective itself is the item's description."""

    success_criteria: LongText = Field(default="", description="How to tell it was achieved.")


class ImageData(KindData):
    """An image shown in a chat."""

    url: Url = Field(description="An absolute http(s) URL of the image.")
    alt_text: LongText = Field(default="", description="Text for readers who cannot see it.")
    mime_type: MimeType | None = Field(default=None, description="e.g. image/png.")
    width: Annotated[int, Field(ge=1, le=100_000)] | None = None
    height: Annotated[int, Field(ge=1, le=100_000)] | None = None


class VideoData(KindData):
    """A video shown in a chat."""

    url: Url = Field(description="An absolute http(s) URL of the video.")
    mime_type: MimeType | None = Field(default=None, description="e.g. video/mp4.")
    duration_seconds: Annotated[float, Field(ge=0, le=86_400 * 7, allow_inf_nan=False)] | None = (
        None
    )
    thumbnail_url: Url | None = None
    captions_url: Url | None = Field(default=None, description="WebVTT captions.")


class QuestionData(KindData):
    """A question put to the user; `choices` lists the answers of a choice question."""

    answer_type: Literal["text", "single_choice", "multiple_choice", "number", "boolean"] = "text"
    required: bool = False
    choices: Annotated[Choices, AfterValidator(_distinct)] = Field(default_factory=list)


class OptionData(KindData):
    """A choice offered to the user (for a question, a scenario branch, ...)."""

    value: ShortText = Field(default="", description="The machine value of the choice.")
    correct: bool | None = Field(default=None, description="Whether it is a right answer.")


class FieldData(KindData):
    """A form field the user fills in."""

    field_type: FieldType = "text"
    required: bool = False
    placeholder: ShortText = ""
    choices: Annotated[Choices, AfterValidator(_distinct)] = Field(
        default_factory=list, description="The values of a select field."
    )


class ParameterFieldData(KindData):
    """A form field whose answer sets a parameter of the chat."""

    parameter_key: Key
    field_type: FieldType = "text"
    required: bool = False


class ParameterData(KindData):
    """A named value handed to the assistant with every chat of the entry."""

    key: Key
    # Strict: a long numeric string is refused, not read as a number.
    value: (
        Annotated[str, StringConstraints(max_length=20_000)]
        | StrictInt
        | StrictFloat
        | StrictBool
        | None
    ) = None


class ScenarioData(KindData):
    """A situation a chat plays out: its setting and ordered steps."""

    setting: LongText = ""
    steps: Annotated[list[LongText], Field(max_length=100)] = Field(default_factory=list)


class FlagData(KindData):
    """A feature switch of the entry."""

    key: Key
    enabled: bool = True


class DepartmentData(KindData):
    """The organisational unit an entry belongs to."""

    code: Annotated[str, StringConstraints(max_length=64)] = ""


class NameData(KindData):
    """A name (of the entry, of a character, ...). The name is the item's name."""


class DescriptionData(KindData):
    """A description text. The text is the item's description."""


ValueShape = Literal["text", "texts", "objects"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything that differs between resource kinds."""

    kind: ResourceKind
    plural: str  # section name on the wire and `<kind>_ids` prefix stays the singular
    title: str  # for schema names: Chat<Title>Section, Draft<Title>Value
    data: type[KindData]
    #: how a draft adds new items of this kind: one text (`name`), a list of texts
    #: (`objectives`), a list of objects (`images`), or not at all (None)
    value_field: str | None = None
    value_shape: ValueShape | None = None

    @property
    def ids_field(self) -> str:
        return f"{self.kind.value}_ids"

    @property
    def description(self) -> str:
        return " ".join((self.data.__doc__ or "").split())


K = ResourceKind
#: In the order of the /get response sections of the artifacts-v5 seed
#: (docs/seeds/000_bbeed2de861aaa6f.txt); every kind appears once.
KINDS: tuple[KindSpec, ...] = (
    KindSpec(K.NAME, "names", "Name", NameData, "name", "text"),
    KindSpec(K.DESCRIPTION, "descriptions", "Description", DescriptionData, "description", "text"),
    KindSpec(K.FLAG, "flags", "Flag", FlagData),
    KindSpec(K.DEPARTMENT, "departments", "Department", DepartmentData),
    KindSpec(K.PERSONA, "personas", "Persona", PersonaData),
    KindSpec(K.DOCUMENT, "documents", "Document", DocumentData),
    KindSpec(K.PARAMETER_FIELD, "parameter_fields", "ParameterField", ParameterFieldData),
    KindSpec(K.SCENARIO, "scenarios", "Scenario", ScenarioData),
    KindSpec(K.FIELD, "fields", "Field", FieldData),
    KindSpec(K.QUESTION, "questions", "Question", QuestionData, "questions", "objects"),
    KindSpec(K.OPTION, "options", "Option", OptionData, "options", "objects"),
    KindSpec(K.VIDEO, "videos", "Video", VideoData, "videos", "objects"),
    KindSpec(K.IMAGE, "images", "Image", ImageData, "images", "objects"),
    KindSpec(
        K.PROBLEM_STATEMENT,
        "problem_statements",
        "ProblemStatement",
        ProblemStatementData,
        "problem_statement",
        "text",
    ),
    KindSpec(K.OBJECTIVE, "objectives", "Objective", ObjectiveData, "objectives", "texts"),
    KindSpec(K.PARAMETER, "parameters", "Parameter", ParameterData),
)
SPECS: dict[ResourceKind, KindSpec] = {spec.kind: spec for spec in KINDS}
assert len(SPECS) == len(ResourceKind), "every kind is declared exactly once"

#: The order of a draft's fields, as in the seed: the value fields, then the `<kind>_ids` lists
#: (names and descriptions first, the others alphabetically).
VALUE_ORDER = (
    "name",
    "description",
    "problem_statement",
    "objectives",
    "images",
    "videos",
    "questions",
    "options",
)
VALUE_SPECS: tuple[KindSpec, ...] = tuple(
    sorted(
        (spec for spec in KINDS if spec.value_field is not None),
        key=lambda spec: VALUE_ORDER.index(spec.value_field or ""),
    )
)
IDS_SPECS: tuple[KindSpec, ...] = (
    SPECS[ResourceKind.NAME],
    SPECS[ResourceKind.DESCRIPTION],
    *sorted(
        (s for s in KINDS if s.kind not in (ResourceKind.NAME, ResourceKind.DESCRIPTION)),
        key=lambda spec: spec.ids_field,
    ),
)

NAME_MAX = 255
TEXT_MAX = 20_000


class ResourceText(InputModel):
    """The columns every kind has: a name (1 to 255 characters) and a description."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)]
    description: LongText = ""


def value_models() -> dict[ResourceKind, type[BaseModel]]:
    """Draft<Title>Value for each kind a draft adds as objects: name, description and the kind's
    data fields, flat (as the seed's DraftImageValue)."""
    models: dict[ResourceKind, type[BaseModel]] = {}
    for spec in KINDS:
        if spec.value_shape == "objects":
            models[spec.kind] = create_model(
                f"Draft{spec.title}Value",
                __base__=(spec.data, ResourceText),  # name and description come first
                __doc__=f"A new {spec.kind.value.replace('_', ' ')} added by a draft: "
                f"{spec.description}",
            )
    return models


VALUE_MODELS = value_models()


def validate_data(kind: ResourceKind, data: Any, *, field: str = "data") -> dict[str, Any]:
    """The kind's data, validated and normalised to JSON; Invalid names each bad field."""
    try:
        model = SPECS[kind].data.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = [
            FieldError(
                ".".join([field, *(str(p) for p in error["loc"])]),
                str(error["msg"]).removeprefix("Value error, "),
            )
            for error in exc.errors()
        ]
        raise Invalid(
            f"Invalid data for a {kind.value}: "
            + "; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
            errors=errors,
        ) from None
    return model.model_dump(mode="json")


def split_text(text: str) -> tuple[str, str]:
    """(name, description) of an item a draft adds as plain text: the name is the text's first
    line cut to 255 characters, the description the whole text."""
    first = text.strip().splitlines()[0] if text.strip() else text
    name = first.strip()[:NAME_MAX] or "untitled"
    return name, text
