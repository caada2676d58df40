"""What the chat artifacts are, read from the code itself: the entities from the mapped models
(their docstrings and columns) and the analytics relations, the resource kinds from the kind
registry (each kind's data model and its JSON schema). Documentation built from this cannot
drift from the code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, Enum, Table, inspect
from sqlalchemy.orm import Mapper

from chatsvc.artifacts.kinds import KINDS, ResourceText
from chatsvc.artifacts.models import (
    Attachment,
    Bundle,
    Draft,
    Resource,
    assistant_stats,
    chat_stats,
)
from chatsvc.assistants.models import Assistant
from chatsvc.chats.models import Chat
from chatsvc.kit.db import Base


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class EntityDoc:
    id: str
    name: str
    type: str
    description: str
    fields: tuple[FieldDoc, ...]


def _text(doc: str | None) -> str:
    return " ".join((doc or "").split())


def _column_type(column: Column[Any]) -> str:
    if isinstance(column.type, Enum):
        return "enum(" + ", ".join(column.type.enums) + ")"
    try:
        return column.type.python_type.__name__
    except NotImplementedError:
        return type(column.type).__name__.lower()


def _column_fields(columns: Any) -> tuple[FieldDoc, ...]:
    return tuple(
        FieldDoc(
            name=column.name,
            type=_column_type(column),
            required=not column.nullable,
            description=_text(column.doc or column.comment),
        )
        for column in columns
    )


#: (id, label, mapped class, what it is when the class itself does not say)
_MAPPED: tuple[tuple[str, str, type[Base], str], ...] = (
    (
        "chat_entry",
        "Chat entry",
        Assistant,
        "An assistant with its customisation bundle: the chats of an entry are its attempts.",
    ),
    ("attempt", "Attempt", Chat, "A chat of an entry, made by a user (or an admin)."),
    ("resource", "Resource", Resource, ""),
    ("bundle", "Bundle revision", Bundle, ""),
    ("attachment", "Attachment", Attachment, ""),
    ("draft", "Draft", Draft, ""),
)
_VIEWS: tuple[tuple[str, str, Table], ...] = (
    ("assistant_stats", "Assistant statistics", assistant_stats),
    ("chat_stats", "Chat statistics", chat_stats),
)


def entities() -> list[EntityDoc]:
    found = []
    for entity_id, label, model, fallback in _MAPPED:
        mapper: Mapper[Any] = inspect(model)
        table = cast(Table, mapper.local_table)
        found.append(
            EntityDoc(
                id=entity_id,
                name=label,
                type=f"table {table.name}",
                description=_text(model.__doc__) or fallback,
                fields=_column_fields(table.columns),
            )
        )
    for entity_id, label, table in _VIEWS:
        found.append(
            EntityDoc(
                id=entity_id,
                name=label,
                type=f"analytics {table.name} (materialized view on PostgreSQL, table on SQLite)",
                description=_text(table.comment),
                fields=_column_fields(table.columns),
            )
        )
    return found


def _schema_type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_schema_type(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "enum(" + ", ".join(map(str, schema["enum"])) + ")"
    if "const" in schema:
        return repr(schema["const"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return kind


def kinds() -> list[EntityDoc]:
    found = []
    for spec in KINDS:
        schema = spec.data.model_json_schema()
        required = set(schema.get("required", []))
        base = ResourceText.model_json_schema()
        fields = [
            FieldDoc(name, _schema_type(prop), name in base.get("required", []), "")
            for name, prop in base["properties"].items()
        ]
        fields += [
            FieldDoc(
                name=f"data.{name}",
                type=_schema_type(prop),
                required=name in required,
                description=str(prop.get("description", "")),
            )
            for name, prop in schema.get("properties", {}).items()
        ]
        adds = (
            f" A draft adds new ones in `{spec.value_field}`."
            if spec.value_field is not None
            else ""
        )
        found.append(
            EntityDoc(
                id=spec.kind.value,
                name=spec.plural,
                type="resource kind",
                description=f"{spec.description} Selected in `{spec.ids_field}`; shown in the "
                f"`{spec.plural}` section.{adds}",
                fields=tuple(fields),
            )
        )
    return found
