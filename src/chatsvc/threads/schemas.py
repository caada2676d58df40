"""What the threads domain takes and gives: list filters parsed from query-string text (a bad value
is a 400 naming the parameter), ordering keys, and the read views of sessions, threads and
messages with what their lists join in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from chatsvc.chats.models import Chat, Message
from chatsvc.chats.service import SEVERITIES
from chatsvc.kit.errors import FieldError, Invalid
from chatsvc.kit.filtering import (
    OrderKey,
    parse_bool,
    parse_choice,
    parse_day,
    parse_ordering,
    parse_uuid,
)
from chatsvc.threads.models import ChatSession

#: what `o` may order threads by (each also with a leading `-`)
THREAD_ORDERING = ("created", "modified", "name", "message_count", "max_severity", "is_flagged")
#: newest activity first
DEFAULT_THREAD_ORDER = (OrderKey("modified", descending=True),)
MAX_QUERY_LENGTH = 200


class Mode(StrEnum):
    """How a streamed turn treats the thread (omitted: a new user message)."""

    RELOAD = "reload"
    EDIT = "edit"


@dataclass(frozen=True, slots=True)
class ThreadFilters:
    """Which threads a list shows; None means no filter, except `is_archived`: archived threads
    are hidden unless it is given."""

    created: date | None = None
    modified: date | None = None
    is_archived: bool | None = None
    is_flagged: bool | None = None
    max_severity: str | None = None
    query: str | None = None
    user: str | None = None

    @classmethod
    def from_query(
        cls,
        *,
        created: str | None = None,
        modified: str | None = None,
        is_archived: str | None = None,
        is_flagged: str | None = None,
        max_severity: str | None = None,
        query: str | None = None,
        user: str | None = None,
    ) -> ThreadFilters:
        text = (query or "").strip()
        if len(text) > MAX_QUERY_LENGTH or "\x00" in text:
            reason = f"at most {MAX_QUERY_LENGTH} characters, without NUL"
            raise Invalid(
                f"query must be {reason}.",
                code="invalid_filter",
                errors=[FieldError("query.query", reason)],
            )
        return cls(
            created=parse_day("created", created),
            modified=parse_day("modified", modified),
            is_archived=parse_bool("is_archived", is_archived),
            is_flagged=parse_bool("is_flagged", is_flagged),
            max_severity=parse_choice("max_severity", max_severity, SEVERITIES),
            query=text or None,
            user=parse_uuid("user", user),
        )


def thread_ordering(values: Iterable[str] | None) -> tuple[OrderKey, ...]:
    return parse_ordering("o", values, THREAD_ORDERING) or DEFAULT_THREAD_ORDER


@dataclass(frozen=True, slots=True)
class MessageFilters:
    """Which messages a list shows: superseded (hidden) ones only with include_history; without
    a thread, only the messages of threads that are not archived."""

    thread: str | None = None
    include_history: bool = False
    is_flagged: bool | None = None

    @classmethod
    def from_query(
        cls,
        *,
        thread: str | None = None,
        include_history: str | None = None,
        is_flagged: str | None = None,
    ) -> MessageFilters:
        return cls(
            thread=parse_uuid("thread", thread),
            include_history=bool(parse_bool("include_history", include_history)),
            is_flagged=parse_bool("is_flagged", is_flagged),
        )


@dataclass(frozen=True, slots=True)
class SessionView:
    session: ChatSession
    username: str
    full_name: str


@dataclass(frozen=True, slots=True)
class ThreadView:
    chat: Chat
    message_count: int
    session_uuid: str | None  # None while the thread's user has no session
    username: str | None  # None when the user was deleted
    full_name: str | None

    @property
    def max_severity(self) -> str:
        return SEVERITIES[self.chat.max_severity]


@dataclass(frozen=True, slots=True)
class MessageView:
    message: Message
    thread_uuid: str
    replaces_uuid: str | None
