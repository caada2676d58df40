"""What an export covers and what it produced: validated filters, the header languages, the
progress callback's shape and the result of a file export."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from chatsvc.kit.db import iso_utc
from chatsvc.kit.errors import FieldError, Invalid
from chatsvc.kit.validation import MAX_ID


class Language(StrEnum):
    """Languages of the CSV header row (the values are never translated, so every file parses
    the same way whatever its header language)."""

    EN_US = "enUs"
    ES_ES = "esEs"
    PT_BR = "ptBr"
    FR_FR = "frFr"
    DE_DE = "deDe"


DEFAULT_LANGUAGE = Language.EN_US
_LANGUAGES = frozenset(language.value for language in Language)

#: called with (rows written so far, rows expected or None when unknown)
Progress = Callable[[int, int | None], Awaitable[None]]


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(
            f"{name} must carry a time zone (e.g. 2026-11-25T00:00:00Z), got {value.isoformat()}.",
            code="naive_datetime",
            errors=[FieldError(name, "a time zone is required")],
        )
    # SQLite keeps datetimes as naive UTC text, so a bound compares correctly only in UTC.
    return value.astimezone(UTC)


def _id(name: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_ID:
        raise Invalid(f"{name} must be a positive id, got {value}.", code="invalid_id")


@dataclass(frozen=True, slots=True)
class ExportFilters:
    """Which messages an export covers: one workspace, optionally one chat and/or one assistant
    (deleted assistants included), and a half-open time range `start <= created_at < end`, so
    consecutive ranges never export a message twice. `language` picks the header row;
    `visible_only` leaves out hidden messages (those an edit or a reload superseded)."""

    workspace_id: int
    chat_id: int | None = None
    assistant_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    language: str = DEFAULT_LANGUAGE.value
    visible_only: bool = False

    def __post_init__(self) -> None:
        _id("workspace_id", self.workspace_id)
        _id("chat_id", self.chat_id)
        _id("assistant_id", self.assistant_id)
        if self.language not in _LANGUAGES:
            supported = ", ".join(language.value for language in Language)
            raise Invalid(
                f"Unsupported language {self.language!r}; supported: {supported}.",
                code="unsupported_language",
                errors=[FieldError("language", f"one of {supported}")],
            )
        # Frozen: normalise through object.__setattr__ once, at construction.
        start, end = _utc("start", self.start), _utc("end", self.end)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "language", Language(self.language).value)
        if start is not None and end is not None and start >= end:
            raise Invalid(
                f"start ({iso_utc(start)}) must be before end ({iso_utc(end)}).",
                code="invalid_date_range",
            )


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export file: where it is, its data rows (header excluded), size and digest."""

    path: Path
    rows: int
    bytes: int
    sha256: str
