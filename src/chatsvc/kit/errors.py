"""The domain error hierarchy. Services raise these; each API face maps them once (kit/web.py).
Each class has a `kind`, the name under which an error crosses a process boundary (a generation's
`error` event) and is raised again on the other side (`from_kind`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: a dotted path and a human reason."""

    field: str
    message: str


@dataclass
class ChatsvcError(Exception):
    """Base of every error a service may raise on purpose. `code` defaults to the class's `kind`
    (a subclass only names its kind)."""

    kind: ClassVar[str] = "error"
    message: str
    code: str = ""
    errors: list[FieldError] = field(default_factory=list)
    #: the chat a failed turn left stored (its user message kept): the response names it, so the
    #: client can retry the turn
    chat_id: int | None = None

    def __post_init__(self) -> None:
        self.code = self.code or self.kind
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


class NotFound(ChatsvcError):
    kind = "not_found"


T = TypeVar("T")


def or_not_found(found: T | None, message: str, *, code: str = "not_found") -> T:
    """`found` itself, or NotFound(message) when a lookup found nothing."""
    if found is None:
        raise NotFound(message, code=code)
    return found


class Conflict(ChatsvcError):
    kind = "conflict"


class Invalid(ChatsvcError):
    """Input that is well-formed but breaks a rule (unknown tool id, too long, ...)."""

    kind = "invalid"


class Unauthenticated(ChatsvcError):
    kind = "unauthenticated"


class Forbidden(ChatsvcError):
    kind = "forbidden"


class Unavailable(ChatsvcError):
    """A dependency (database, Redis, upstream) cannot be reached."""

    kind = "unavailable"


class UpstreamError(ChatsvcError):
    """A generator or other upstream could not be reached or answered with an error (502)."""

    kind = "upstream_error"


class UpstreamTimeout(ChatsvcError):
    """A generator or other upstream did not answer in time (504)."""

    kind = "upstream_timeout"


class InternalError(ChatsvcError):
    """Something this service did not foresee went wrong (the details are in the log only)."""

    kind = "internal"


def from_kind(kind: str, message: str, code: str, *, chat_id: int | None = None) -> ChatsvcError:
    """The error a `kind` names, raised again where it arrived (an unknown kind: the base)."""
    for error_class in _KINDS:
        if error_class.kind == kind:
            return error_class(message, code=code, chat_id=chat_id)
    return ChatsvcError(message, code, chat_id=chat_id)


_KINDS: tuple[type[ChatsvcError], ...] = (
    NotFound,
    Conflict,
    Invalid,
    Unauthenticated,
    Forbidden,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
    InternalError,
)
