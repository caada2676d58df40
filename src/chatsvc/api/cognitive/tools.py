"""Cognitive face: /tools/retrievals/, /tools/scripts/ (one route factory serves both kinds) and
POST /tools/update_filters/. Translation only: rules live in chatsvc.tools.service."""

# No `from __future__ import annotations`: the factory's endpoints annotate with local classes,
# which FastAPI must see as objects, not strings.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator

from chatsvc.api.cognitive.params import ToolId
from chatsvc.api.cognitive.schemas import OutModel
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.kit.updates import update_values, with_body
from chatsvc.kit.validation import InputModel, PatchModel
from chatsvc.kit.web import (
    PageDep,
    PageOut,
    RouteSpec,
    SettingsDep,
    SlashRouter,
    error_responses,
    invalid_is_400,
)
from chatsvc.services import SessionDep, ToolsDep
from chatsvc.tools import service as tool_service
from chatsvc.tools.models import MetadataFilter, Tool, ToolKind
from chatsvc.tools.schemas import (
    ParameterIn,
    ParameterName,
    ParameterOut,
    Parameters,
    ParametersMixin,
)

router = SlashRouter(tags=["tools"])

INT32 = 2_147_483_647
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
RetrievalId = Annotated[
    int, Field(ge=0, le=INT32, description="The retrieval backend searched (configured ids).")
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]


# --- wire schemas --------------------------------------------------------------------------------


class ToolIn(ParametersMixin, InputModel):
    """The fields every tool kind shares; omitted ones take their defaults (PUT replaces)."""

    parameters: Parameters = Field(default_factory=list)
    name: Name
    description: Description = ""
    show_tool_message: bool = True
    show_assistant_message: bool = True
    edit_available: bool = True

    def new_parameters(self) -> list[ParameterIn]:
        """A replacement's parameters: all of them, [] when left out."""
        return self.parameters


class RetrievalToolIn(ToolIn):
    """A retrieval tool: its parameters and the retrieval backend it calls."""

    retrieval_id: RetrievalId
    answer: bool = Field(
        default=False, description="Return the retrieved content as the answer, without a model."
    )


class ScriptToolIn(ToolIn):
    """A script tool: its parameters and its JavaScript code."""

    code: Code = Field(description="JavaScript, compiled when saved: a syntax error is a 400.")


class ToolPatch(ParametersMixin, PatchModel):
    """A partial update: only the fields sent change; `parameters`, when sent, replaces them."""

    parameters: Parameters | None = None
    name: Name | None = None
    description: Description | None = None
    show_tool_message: bool | None = None
    show_assistant_message: bool | None = None
    edit_available: bool | None = None

    def new_parameters(self) -> list[ParameterIn] | None:
        return self.parameters if "parameters" in self.model_fields_set else None


class RetrievalToolPatch(ToolPatch):
    """The fields of a retrieval tool to change (those sent)."""

    retrieval_id: RetrievalId | None = None
    answer: bool | None = None


class ScriptToolPatch(ToolPatch):
    """The fields of a script tool to change (those sent)."""

    code: Code | None = None


class ToolShown(OutModel):
    """The fields every kind of tool shows, MCP tools too (mcp.McpToolOut)."""

    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    show_tool_message: bool
    show_assistant_message: bool
    edit_available: bool


class _IdAndParameters(OutModel):
    id: int
    parameters: list[ParameterOut]


# A model's fields come base by base, the last base first: id, parameters, then the others.
class ToolOut(ToolShown, _IdAndParameters):
    pass


class RetrievalToolOut(ToolOut):
    """A retrieval tool."""

    retrieval_id: int
    answer: bool


class ScriptToolOut(ToolOut):
    """A script tool."""

    code: str


def tool_fields(tool: Tool) -> dict[str, Any]:
    """The fields every kind of tool shows (MCP tools too), by name."""
    return dict(ToolOut.model_validate(tool))


def retrieval_out(tool: Tool) -> RetrievalToolOut:
    return RetrievalToolOut(
        **tool_fields(tool),
        retrieval_id=int(tool.config.get("retrieval_id", 0)),
        answer=bool(tool.config.get("answer", False)),
    )


def script_out(tool: Tool) -> ScriptToolOut:
    return ScriptToolOut(**tool_fields(tool), code=str(tool.config.get("code", "")))


class RetrievalToolPage(PageOut[RetrievalToolOut]):
    """A page of retrieval tools, with count and the next and previous pages' URLs."""


class ScriptToolPage(PageOut[ScriptToolOut]):
    """A page of script tools, with count and the next and previous pages' URLs."""


# --- the two kinds: one route factory ------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kind: ToolKind
    segment: str  # /tools/<segment>/
    singular: str  # operation ids: list_<plural>, create_<singular>, ...
    plural: str
    title: str
    body: type[ToolIn]
    patch: type[ToolPatch]
    out: type[ToolOut]
    page: type[PageOut[Any]]
    to_out: Callable[[Tool], ToolOut]
    #: whether the seed documents 400 for an invalid body on create (else 422)
    create_400: bool


KINDS = (
    Kind(ToolKind.RETRIEVAL, "retrievals", "retrieval_tool", "retrieval_tools", "retrieval tool",
         RetrievalToolIn, RetrievalToolPatch, RetrievalToolOut, RetrievalToolPage, retrieval_out,
         False),
    Kind(ToolKind.SCRIPT, "scripts", "script_tool", "script_tools", "script tool",
         ScriptToolIn, ScriptToolPatch, ScriptToolOut, ScriptToolPage, script_out,
         True),
)  # fmt: skip


def _register(kind: Kind) -> None:
    base = f"/tools/{kind.segment}/"
    item = f"{base}{{id}}/"
    body_type = kind.body
    to_out = kind.to_out

    async def list_tools(
        request: Request, session: SessionDep, auth: AuthDep, page: PageDep
    ) -> PageOut[Any]:
        """Paginated by page and page_size; deleted tools are not listed."""
        found = await tool_service.list_tools(session, auth.workspace_id, kind.kind, page)
        return kind.page.of(request, found, [to_out(tool) for tool in found.items])

    async def create_tool(
        runtime: ToolsDep,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
    ) -> ToolOut:
        """Creates the tool in the caller's workspace (admin keys), with its parameters."""
        data: ToolIn = body
        values = data.model_dump(exclude={"parameters"})
        tool = await tool_service.create_tool(
            session, runtime, auth.workspace_id, kind.kind, values, data.parameters
        )
        return to_out(tool)

    async def get_tool(id: ToolId, session: SessionDep, auth: AuthDep) -> ToolOut:
        """One tool of the caller's workspace, with its parameters."""
        return to_out(await tool_service.get_tool(session, auth.workspace_id, kind.kind, id))

    @invalid_is_400
    async def update_tool(
        runtime: ToolsDep,
        id: ToolId,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
    ) -> ToolOut:
        """Replaces the tool: omitted fields take their defaults, parameters included."""
        data: ToolIn | ToolPatch = body
        values = update_values(data, exclude=frozenset({"parameters"}))
        tool = await tool_service.update_tool(
            session, runtime, auth.workspace_id, kind.kind, id, values, data.new_parameters()
        )
        return to_out(tool)

    partial_update_tool = with_body(
        update_tool,
        kind.patch,
        "partial_update_tool",
        doc="Only the fields sent change; parameters, when sent, replace the old ones.",
    )

    async def delete_tool(id: ToolId, session: SessionDep, auth: AdminDep) -> Response:
        """The tool leaves the API and every assistant's tools and pretools lists."""
        await tool_service.delete_tool(session, auth.workspace_id, kind.kind, id)
        return Response(status_code=204)

    not_found = error_responses({404: f"No such {kind.title} in this workspace."})
    # Rules the service checks (a configured retrieval_id) are 400 whatever the seed says.
    broken = error_responses({400: "A rule of the tool is broken."})
    create = invalid_is_400(create_tool) if kind.create_400 else create_tool
    one, title = kind.singular, kind.title
    router.add_routes((
        RouteSpec("GET", base, list_tools, kind.page, 200, f"list_{kind.plural}",
                  f"List the {title}s"),
        RouteSpec("POST", base, create, kind.out, 201, f"create_{one}", f"Create a {title}",
                  broken),
        RouteSpec("GET", item, get_tool, kind.out, 200, f"get_{one}", f"Retrieve a {title}",
                  not_found),
        RouteSpec("PUT", item, update_tool, kind.out, 200, f"update_{one}", f"Update a {title}",
                  not_found),
        RouteSpec("PATCH", item, partial_update_tool, kind.out, 200, f"partial_update_{one}",
                  f"Partially update a {title}", not_found),
        RouteSpec("DELETE", item, delete_tool, None, 204, f"delete_{one}", f"Delete a {title}",
                  not_found),
    ))  # fmt: skip


for _kind in KINDS:
    _register(_kind)


# --- metadata filters ----------------------------------------------------------------------------

FilterType = Literal["string", "number", "integer", "boolean", "date", "enum"]
PossibleValue = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class FilterIn(InputModel):
    """One filter definition of a retrieval backend, created or replaced (or removed with
    `delete: true`). null for type, possible_values or format means the default."""

    metadata_config_id: Annotated[
        int, Field(ge=0, le=INT32, description="The retrieval backend (retrieval_id) it filters.")
    ]
    name: ParameterName
    type: FilterType = "string"
    possible_values: Annotated[list[PossibleValue], Field(max_length=500)] = Field(
        default_factory=list
    )
    format: Annotated[str, StringConstraints(max_length=64)] = Field(
        default="", description="Date filters only: %Y-%m-%d (default), %d/%m/%Y, DD/MM/YYYY..."
    )
    delete: bool = False

    @field_validator("type", "possible_values", "format", "delete", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: Any) -> Any:
        if value is None:
            return {"type": "string", "possible_values": [], "format": "", "delete": False}[
                info.field_name
            ]
        return value


class FilterOut(OutModel):
    """A metadata filter a retrieval backend offers."""

    id: int
    metadata_config_id: int
    name: str
    type: str
    possible_values: list[str]
    format: str
    created_at: datetime
    updated_at: datetime


class FiltersOut(BaseModel):
    """The metadata filters of a retrieval backend's configuration."""

    metadata_config_id: int
    filters: list[FilterOut] = Field(description="Every filter of this backend, by name.")


def _filters_out(metadata_config_id: int, rows: list[MetadataFilter]) -> FiltersOut:
    return FiltersOut(
        metadata_config_id=metadata_config_id,
        filters=[FilterOut.model_validate(row) for row in rows],
    )


@router.post(
    "/tools/update_filters/",
    response_model=FiltersOut,
    summary="Update the filters value",
    description=(
        "Creates or replaces the metadata filter `name` of the retrieval backend "
        "`metadata_config_id`, or removes it with `delete: true`. Answers with every filter of "
        "that backend after the change."
    ),
    responses=error_responses({404: "delete: no such filter."}),
)
@invalid_is_400
async def update_filters(
    body: FilterIn, session: SessionDep, auth: AdminDep, settings: SettingsDep
) -> FiltersOut:
    # FilterIn's fields are update_filter's keywords, one for one.
    rows = await tool_service.update_filter(
        session, settings, auth.workspace_id, **body.model_dump()
    )
    return _filters_out(body.metadata_config_id, rows)
