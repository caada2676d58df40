"""Input checks every domain shares: text the databases can store, JSON types taken as sent
(no coercion of 0 to false or of a number to a date), bounded JSON maps, and the base of partial
updates (PATCH bodies)."""

from __future__ import annotations

import re
import types
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

#: NUL cannot be stored in PostgreSQL text or JSONB; lone surrogates cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_ID = 2**63 - 1


def _find_unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return here
            found = _find_unstorable(item, here)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unstorable(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _leaf_types(annotation: Any) -> frozenset[Any]:
    """The types a field's annotation admits, unions and Annotated unwrapped, None left out."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        found: frozenset[Any] = frozenset()
        for arg in get_args(annotation):
            found |= _leaf_types(arg)
        return found
    if annotation is type(None):
        return frozenset()
    return frozenset({origin or annotation})


@cache
def _field_types(model: type[BaseModel], name: str) -> frozenset[Any]:
    field = model.model_fields.get(name)
    return frozenset() if field is None else _leaf_types(field.annotation)


def _wrong_json_type(leaves: frozenset[Any], value: Any) -> str | None:
    """Why `value` is not of the JSON type a field of `annotation` takes, for the fields whose
    JSON type is fixed (booleans, numbers, dates): pydantic's lax mode would turn 0 into false
    "5" into 5 and 1700000000 into a date, which the OpenAPI document does not allow."""
    if not leaves:
        return None
    if leaves == {bool}:
        return None if isinstance(value, bool) else "must be a JSON boolean (true or false)"
    if leaves <= {int, float}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a JSON number"
    elif leaves <= {datetime, date} and not isinstance(value, str | datetime | date):
        return "must be a date-time string (ISO 8601)"
    return None


class InputModel(BaseModel):
    """Base of request bodies: unknown keys are ignored (clients PUT back what they GET, read-only
    fields included), booleans, numbers and dates come as their own JSON types, and text must
    be storable."""

    model_config = ConfigDict(extra="ignore", str_max_length=1_000_000)

    @field_validator("*", mode="before")
    @classmethod
    def _json_type(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not isinstance(value, dict | list):
            problem = _wrong_json_type(_field_types(cls, info.field_name or ""), value)
            if problem is not None:
                raise ValueError(f"{problem}, got {type(value).__name__} {str(value)[:40]!r}")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        where = _find_unstorable(value, "")
        if where is not None:
            inside = f" (at {where})" if where else ""
            raise ValueError(
                f"contains a NUL character or an unpaired surrogate{inside}, which cannot be stored"
            )
        return value


class PatchModel(InputModel):
    """Base of partial updates (PATCH bodies): only the fields sent change, and a field sent as
    null is refused, unless `nullable` names it (there null is a value: "back to the default").
    Optional fields here stand for "may be left out", not for "may be null"."""

    #: fields that may be sent as null
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key in cls.model_fields and key not in cls.nullable:
                    raise ValueError(f"{key} may not be null")
        return data

    def changes(self, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The fields sent (but `exclude`), as validated: nested bodies stay models."""
        return {name: getattr(self, name) for name in self.model_fields_set - exclude}
