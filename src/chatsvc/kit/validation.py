"""Input checks every domain shares: text the databases can store, bounded JSON maps."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

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
