"""Input checks every domain shares: text the databases can store, bounded JSON maps, and the
base of partial updates (PATCH bodies)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

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


class InputModel(BaseModel):
    """Base of request bodies: unknown keys are ignored (clients PUT back what they GET, read-only
    fields included) and text must be storable."""

    model_config = ConfigDict(extra="ignore", str_max_length=1_000_000)

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
