"""Typed tool parameters: the input and output shapes every tool kind shares, and the JSON
Schema a generator is offered for a tool (OpenAI function calling)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chatsvc.kit.validation import InputModel
from chatsvc.tools.models import Tool, ToolParameter

#: what OpenAI-compatible function names allow: the tool's name is sanitised into one
FUNCTION_NAME = re.compile(r"[^a-zA-Z0-9_-]+")
ParameterType = Literal["string", "number", "integer", "boolean", "array", "object"]
ParameterName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
]
#: a JSON Schema fragment (items of an array, properties of an object)
SchemaFragment = Annotated[dict[str, Any], Field(max_length=100)]


class ParameterIn(InputModel):
    """One parameter of a tool: a property of the JSON Schema the model is offered."""

    name: ParameterName
    description: Annotated[str, StringConstraints(max_length=2_000)] = ""
    type: ParameterType = "string"
    items: SchemaFragment | None = None
    required: bool = True
    enum: Annotated[list[str | int | float | bool], Field(min_length=1, max_length=500)] | None = (
        None
    )
    properties: SchemaFragment | None = None


def check_unique_names(parameters: Sequence[ParameterIn]) -> Sequence[ParameterIn]:
    seen: set[str] = set()
    for parameter in parameters:
        if parameter.name in seen:
            raise ValueError(f"parameter {parameter.name!r} appears twice")
        seen.add(parameter.name)
    return parameters


Parameters = Annotated[list[ParameterIn], Field(max_length=64)]


class ParametersMixin(BaseModel):
    @field_validator("parameters", check_fields=False)
    @classmethod
    def _unique(cls, value: list[ParameterIn] | None) -> list[ParameterIn] | None:
        if value is not None:
            check_unique_names(value)
        return value


class ParameterOut(BaseModel):
    """A parameter of a tool (a JSON Schema property)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    type: str
    items: dict[str, Any] | None = None
    required: bool
    enum: list[str | int | float | bool] | None = None
    properties: dict[str, Any] | None = None


def parameter_rows(parameters: Iterable[ParameterIn]) -> list[ToolParameter]:
    """New rows for a tool's parameters, in the given order."""
    return [
        ToolParameter(position=position, **p.model_dump()) for position, p in enumerate(parameters)
    ]


def parameters_schema(parameters: Iterable[ToolParameter]) -> dict[str, Any]:
    """The JSON Schema (type object) of a tool's arguments."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in parameters:
        schema: dict[str, Any] = {"type": p.type}
        if p.description:
            schema["description"] = p.description
        if p.enum is not None:
            schema["enum"] = p.enum
        if p.type == "array":
            schema["items"] = p.items or {}
        if p.type == "object" and p.properties is not None:
            schema["properties"] = p.properties
        properties[p.name] = schema
        if p.required:
            required.append(p.name)
    return {"type": "object", "properties": properties, "required": required}


def function_name(tool: Tool) -> str:
    """The name a generator calls the tool by: its name made safe, and unique by its id."""
    base = FUNCTION_NAME.sub("_", tool.name).strip("_")[:48] or "tool"
    return f"{base}_{tool.id}"
