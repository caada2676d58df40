"""Cognitive face: /tools/retrievals/, /tools/scripts/ (one route factory serves both kinds) and
POST /tools/update_filters/. Translation only: rules live in chatsvc.tools.service."""

# No `from __future__ import annotations`: the factory's endpoints annotate with local classes,
# which FastAPI must see as objects, not strings.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Request, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator

from chatsvc.api.cognitive.schemas import OutModel
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.kit.validation import MAX_ID, InputModel, PatchModel
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SettingsDep,
    SlashRouter,
    envelope,
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
    parameter_out,
)

router = SlashRouter(tags=["tools"], responses=ERROR_RESPONSES)

INT32 = 2_147_483_647
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
RetrievalId = Annotated[
    int, Field(ge=0, le=INT32, description="The retrieval backend searched (configured ids).")
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
ToolId = Annotated[int, Path(ge=1, le=MAX_ID, description="The tool's id.")]


# --- wire schemas --------------------------------------------------------------------------------


class ToolIn(ParametersMixin, InputModel):
    """The fields every tool kind shares; omitted ones take their defaults (PUT replaces)."""

    parameters: Parameters = Field(default_factory=list)
    name: Name
    description: Description = ""
    show_tool_message: bool = True
    show_assistant_message: bool = True
    edit_available: bool = True


class RetrievalToolIn(ToolIn):
    retrieval_id: RetrievalId
    answer: bool = Field(
        default=False, description="Return the retrieved content as the answer, without a model."
    )


class ScriptToolIn(ToolIn):
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
    retrieval_id: RetrievalId | None = None
    answer: bool | None = None


class ScriptToolPatch(ToolPatch):
    code: Code | None = None


class ToolOut(OutModel):
    id: int
    parameters: list[ParameterOut]
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    show_tool_message: bool
    show_assistant_message: bool
    edit_available: bool


class RetrievalToolOut(ToolOut):
    retrieval_id: int
    answer: bool


class ScriptToolOut(ToolOut):
    code: str


def _common(tool: Tool) -> dict[str, Any]:
    return {
        "id": tool.id,
        "parameters": [parameter_out(row) for row in tool.parameters],
        "name": tool.name,
        "description": tool.description,
        "created_at": tool.created_at,
        "updated_at": tool.updated_at,
        "show_tool_message": tool.show_tool_message,
        "show_assistant_message": tool.show_assistant_message,
        "edit_available": tool.edit_available,
    }


def retrieval_out(tool: Tool) -> RetrievalToolOut:
    return RetrievalToolOut(
        **_common(tool),
        retrieval_id=int(tool.config.get("retrieval_id", 0)),
        answer=bool(tool.config.get("answer", False)),
    )


def script_out(tool: Tool) -> ScriptToolOut:
    return ScriptToolOut(**_common(tool), code=str(tool.config.get("code", "")))


class RetrievalToolPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[RetrievalToolOut]


class ScriptToolPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[ScriptToolOut]


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
    page: type[BaseModel]
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
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorBody, "description": f"No such {kind.title} in this workspace."}
    }
    body_type = kind.body
    patch_type = kind.patch
    to_out = kind.to_out

    async def list_tools(
        request: Request, session: SessionDep, auth: AuthDep, page: PageDep
    ) -> dict[str, Any]:
        result = await tool_service.list_tools(session, auth.workspace_id, kind.kind, page)
        return envelope(request, result, [to_out(tool) for tool in result.items])

    async def create_tool(
        runtime: ToolsDep,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
    ) -> Any:
        data: ToolIn = body
        tool = await tool_service.create_tool(
            session,
            runtime,
            auth.workspace_id,
            kind.kind,
            data.model_dump(exclude={"parameters"}),
            data.parameters,
        )
        return to_out(tool)

    async def get_tool(id: ToolId, session: SessionDep, auth: AuthDep) -> Any:
        return to_out(await tool_service.get_tool(session, auth.workspace_id, kind.kind, id))

    @invalid_is_400
    async def update_tool(
        runtime: ToolsDep,
        id: ToolId,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
    ) -> Any:
        data: ToolIn = body
        tool = await tool_service.update_tool(
            session,
            runtime,
            auth.workspace_id,
            kind.kind,
            id,
            data.model_dump(exclude={"parameters"}),
            data.parameters,
        )
        return to_out(tool)

    @invalid_is_400
    async def partial_update_tool(
        runtime: ToolsDep,
        id: ToolId,
        body: patch_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
    ) -> Any:
        data: ToolPatch = body
        tool = await tool_service.update_tool(
            session,
            runtime,
            auth.workspace_id,
            kind.kind,
            id,
            data.changes(exclude=frozenset({"parameters"})),
            data.new_parameters(),
        )
        return to_out(tool)

    async def delete_tool(id: ToolId, session: SessionDep, auth: AdminDep) -> Response:
        await tool_service.delete_tool(session, auth.workspace_id, kind.kind, id)
        return Response(status_code=204)

    router.add_api_route(
        base,
        list_tools,
        methods=["GET"],
        response_model=kind.page,
        name=f"list_{kind.plural}",
        summary=f"List the {kind.title}s",
        description="Paginated by page and page_size; deleted tools are not listed.",
    )
    router.add_api_route(
        base,
        invalid_is_400(create_tool) if kind.create_400 else create_tool,
        methods=["POST"],
        response_model=kind.out,
        status_code=201,
        name=f"create_{kind.singular}",
        summary=f"Create a {kind.title}",
        # Rules the service checks (a configured retrieval_id) are 400 whatever the seed says.
        responses={400: {"model": ErrorBody, "description": "A rule of the tool is broken."}},
    )
    router.add_api_route(
        item,
        get_tool,
        methods=["GET"],
        response_model=kind.out,
        name=f"get_{kind.singular}",
        summary=f"Retrieve a {kind.title}",
        responses=not_found,
    )
    router.add_api_route(
        item,
        update_tool,
        methods=["PUT"],
        response_model=kind.out,
        name=f"update_{kind.singular}",
        summary=f"Update a {kind.title}",
        description="Replaces the tool: omitted fields take their defaults, parameters included.",
        responses=not_found,
    )
    router.add_api_route(
        item,
        partial_update_tool,
        methods=["PATCH"],
        response_model=kind.out,
        name=f"partial_update_{kind.singular}",
        summary=f"Partially update a {kind.title}",
        description="Only the fields sent change; parameters, when sent, replace the old ones.",
        responses=not_found,
    )
    router.add_api_route(
        item,
        delete_tool,
        methods=["DELETE"],
        status_code=204,
        name=f"delete_{kind.singular}",
        summary=f"Delete a {kind.title}",
        description="The tool leaves the API and every assistant's tools and pretools lists.",
        responses=not_found,
    )


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
    id: int
    metadata_config_id: int
    name: str
    type: str
    possible_values: list[str]
    format: str
    created_at: datetime
    updated_at: datetime


class FiltersOut(BaseModel):
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
    responses={404: {"model": ErrorBody, "description": "delete: no such filter."}},
)
@invalid_is_400
async def update_filters(
    body: FilterIn, session: SessionDep, auth: AdminDep, settings: SettingsDep
) -> FiltersOut:
    rows = await tool_service.update_filter(
        session,
        settings,
        auth.workspace_id,
        metadata_config_id=body.metadata_config_id,
        name=body.name,
        type=body.type,
        possible_values=body.possible_values,
        format=body.format,
        delete=body.delete,
    )
    return _filters_out(body.metadata_config_id, rows)
