"""Parameters of the threads face: UUID path ids (malformed: 422 before any query), list filters
and sparse fieldsets read as text and parsed by the domain (a bad value: 400 naming it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chatsvc.api.threads.schemas import SESSION_FIELDS, THREAD_FIELDS
from chatsvc.chats.service import SEVERITIES
from chatsvc.kit.filtering import OrderKey, filter_schema, parse_fields, pick
from chatsvc.kit.pagination import Page
from chatsvc.kit.web import list_response
from chatsvc.threads.schemas import THREAD_ORDERING, MessageFilters, ThreadFilters, thread_ordering

T = TypeVar("T")
SessionUuid = Annotated[uuid.UUID, Path(description="The chat session's UUID.")]
ThreadUuid = Annotated[uuid.UUID, Path(description="The thread's UUID.")]


def _documented(description: str, schema: dict[str, Any]) -> Any:
    """A parameter documented with `schema` but read as text, parsed by the domain."""
    return Query(description=description, json_schema_extra={"anyOf": [schema, {"type": "null"}]})


def _text(description: str, **schema: Any) -> Any:
    """A filter read as text: a value as `schema` says, or empty (no filter)."""
    return Query(
        description=description, json_schema_extra=filter_schema({"type": "string", **schema})
    )


def _many(description: str, choices: Sequence[str]) -> Any:
    return _documented(
        f"{description} Repeat it or separate values with commas.",
        {"type": "array", "items": {"type": "string", "enum": list(choices)}},
    )


def _fields(choices: Sequence[str]) -> Any:
    return _many("Answer only these fields (a sparse fieldset).", choices)


@dataclass(frozen=True, slots=True)
class Fieldset:
    """The sparse fieldset a request asks for (`field`; None: every field), and its answer's JSON
    reduced to it (a document no response model describes, so built here on purpose)."""

    fields: tuple[str, ...] | None

    def one(self, body: BaseModel) -> JSONResponse:
        return JSONResponse(self._pick(body))

    def page(self, request: Request, found: Page[T], out: Callable[[T], BaseModel]) -> JSONResponse:
        """A plain-array list of the page's items as `out` makes them, with its page's headers."""
        return list_response(request, found, [self._pick(out(item)) for item in found.items])

    def _pick(self, body: BaseModel) -> dict[str, Any]:
        return pick(body.model_dump(mode="json"), self.fields)


async def session_fields(
    field: Annotated[list[str] | None, _fields(SESSION_FIELDS)] = None,
) -> Fieldset:
    return Fieldset(parse_fields("field", field, SESSION_FIELDS))


async def thread_fields(
    field: Annotated[list[str] | None, _fields(THREAD_FIELDS)] = None,
) -> Fieldset:
    return Fieldset(parse_fields("field", field, THREAD_FIELDS))


async def thread_filters(
    created: Annotated[
        str | None, _text("Threads created on this day (YYYY-MM-DD, UTC).", format="date")
    ] = None,
    modified: Annotated[
        str | None, _text("Threads last active on this day (YYYY-MM-DD, UTC).", format="date")
    ] = None,
    is_archived: Annotated[
        str | None,
        _text("true: archived threads only; false (the default): the others.", type="boolean"),
    ] = None,
    is_flagged: Annotated[
        str | None,
        _text("Threads with (true) or without (false) a flagged message.", type="boolean"),
    ] = None,
    max_severity: Annotated[
        str | None, _text("Threads whose highest severity is this.", enum=list(SEVERITIES))
    ] = None,
    query: Annotated[
        str | None,
        _text("Case-insensitive text searched in thread names and (shown) message text."),
    ] = None,
    user: Annotated[
        str | None,
        _text("Threads of this user (the `user` of a chat session).", format="uuid"),
    ] = None,
) -> ThreadFilters:
    return ThreadFilters.from_query(
        created=created,
        modified=modified,
        is_archived=is_archived,
        is_flagged=is_flagged,
        max_severity=max_severity,
        query=query,
        user=user,
    )


async def ordering(
    o: Annotated[
        list[str] | None,
        _many(
            "Ordering: one or more keys, `-` before a key for descending (default -modified).",
            [*THREAD_ORDERING, *(f"-{key}" for key in THREAD_ORDERING)],
        ),
    ] = None,
) -> tuple[OrderKey, ...]:
    return thread_ordering(o)


async def message_filters(
    thread: Annotated[str | None, _text("Messages of this thread.", format="uuid")] = None,
    include_history: Annotated[
        str | None,
        _text("true: also superseded messages (edits, reloads) and hidden ones.", type="boolean"),
    ] = None,
    is_flagged: Annotated[
        str | None, _text("Flagged (true) or unflagged (false) messages.", type="boolean")
    ] = None,
) -> MessageFilters:
    return MessageFilters.from_query(
        thread=thread, include_history=include_history, is_flagged=is_flagged
    )


SessionFieldsDep = Annotated[Fieldset, Depends(session_fields)]
ThreadFieldsDep = Annotated[Fieldset, Depends(thread_fields)]
ThreadFiltersDep = Annotated[ThreadFilters, Depends(thread_filters)]
OrderingDep = Annotated[tuple[OrderKey, ...], Depends(ordering)]
MessageFiltersDep = Annotated[MessageFilters, Depends(message_filters)]
